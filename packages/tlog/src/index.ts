// Public surface of tlog.
export { fsckLog, type FsckReport } from './fsck.ts';
export { TransparencyLog, type PublishedCheckpoint } from './log.ts';
export { runMonitor, type MonitorMatch, type MonitorOptions, type MonitorPass, type MonitorResult, type MonitorState } from './monitor.ts';
export { mountTileReadApi } from './read-api.ts';
export { SqliteFileStorage } from './sqlite.ts';
export type { LogStorage } from './storage.ts';
