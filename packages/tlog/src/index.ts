// Public surface of tlog.
export { findLogDirs, fsckLog, type FsckOptions, type FsckReport } from './fsck.ts';
export {
  TransparencyLog,
  type AppendRequest,
  type AppendResult,
  type PublishedCheckpoint,
  type TransparencyLogOptions,
} from './log.ts';
export { verifyCheckpointNote } from './checkpoint.ts';
export { runMonitor, type MonitorMatch, type MonitorOptions, type MonitorPass, type MonitorResult, type MonitorState } from './monitor.ts';
export { mountTileReadApi } from './read-api.ts';
export { SqliteFileStorage } from './sqlite.ts';
export { MemoryStorage, type Fault, type FaultPlan, type StorageMethod } from './memory-storage.ts';
export type { LogIdentity, LogStorage, NewEntry, StoredCheckpoint, StoredEntry } from './storage.ts';
