// The signing side alone (`@waxseal/git/signing`): what waxseal-git needs to write a signature,
// without the verifier, the policy model and their dependencies, so that the program git starts
// for every commit loads as little as possible.
export { armorSignature, assembleCmsSignature, signedAttributes, timeStampToken, type CmsParts } from './cms.ts';
export { encodeTransparencyLogEntry } from './protobuf.ts';
