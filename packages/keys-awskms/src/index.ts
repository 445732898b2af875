// Public surface: the backend that openSigner() loads for its key URIs.
export { openAwsKmsSigner } from './awskms.ts';
