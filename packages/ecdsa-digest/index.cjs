// Loads the compiled addon. A missing build (no compiler at install time, install scripts
// switched off) or WAXSEAL_NATIVE_ECDSA=0 is not an error: `addon` is then undefined,
// `unavailableReason` says why, and callers use their portable path.
'use strict';
let addon;
let unavailableReason;
if (process.env.WAXSEAL_NATIVE_ECDSA === '0') {
  unavailableReason = 'disabled by WAXSEAL_NATIVE_ECDSA=0';
} else {
  try {
    const loaded = require('./build/Release/ecdsa_digest.node');
    if (typeof loaded.verify !== 'function') throw new Error('the module has no verify function');
    addon = loaded;
  } catch (e) {
    unavailableReason = e instanceof Error ? e.message.split('\n')[0] : String(e);
  }
}
module.exports = { addon, unavailableReason };
