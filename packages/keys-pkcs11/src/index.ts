// Public surface: the backend that openSigner() loads for its key URIs.
export { openPkcs11Signer } from './pkcs11.ts';
