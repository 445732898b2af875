// Registers the HSM and cloud KMS key backends with openSigner(). Importing this module is cheap:
// each backend module (and the SDK or native binding behind it) loads only when a key URI of its
// scheme is first opened, so CLI start-up does not pay for SDKs it will not use.
//   pkcs11:token=…;object=…?module-path=…&pin-source=env:VAR     HSM through PKCS#11 (./pkcs11.ts)
//   awskms://[host:port]/<key-id|alias/name|arn>[?region=…]       AWS KMS (./awskms.ts)
//   gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/V   Google Cloud KMS (./gcpkms.ts)
import { registerKeyBackend } from './open.ts';

registerKeyBackend('pkcs11:', async (_u, raw) => (await import('./pkcs11.ts')).openPkcs11Signer(raw));
registerKeyBackend('awskms:', async (_u, raw) => (await import('./awskms.ts')).openAwsKmsSigner(raw));
registerKeyBackend('gcpkms:', async (_u, raw) => (await import('./gcpkms.ts')).openGcpKmsSigner(raw));
