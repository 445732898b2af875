// Public surface: the backend that openSigner() loads for its key URIs.
export { openGcpKmsSigner } from './gcpkms.ts';
