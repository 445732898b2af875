// Loads the compiled addon; callers treat a failed load as "not available" and fall back.
'use strict';
module.exports = require('./build/Release/ecdsa_digest.node');
