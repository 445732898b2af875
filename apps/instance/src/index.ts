// Public surface of instance.
export { loadInstanceConfig } from './config.ts';
export { DEFAULT_DEV_DATA, DEFAULT_DEV_PORT, readDevInstance, startDevStack } from './dev/devstack.ts';
export { startInstance } from './instance.ts';
