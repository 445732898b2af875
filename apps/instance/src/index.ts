// Public surface of instance.
export { loadInstanceConfig, type InstanceConfig } from './config.ts';
export {
  DEFAULT_DEV_DATA,
  DEFAULT_DEV_PORT,
  readDevInstance,
  startDevStack,
  type DevInstance,
  type DevStack,
  type DevStackOptions,
} from './dev/devstack.ts';
export { devProfile, type DevProfile, type DevProfileOptions } from './dev/profile.ts';
export { startInstance, type InstanceExtras, type InstanceOptions, type RunningInstance } from './instance.ts';
