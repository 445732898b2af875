// Public surface of dev-idp.
export { DevIdentityProvider, fetchDevCiToken, fetchDevToken } from './dev-idp.ts';
