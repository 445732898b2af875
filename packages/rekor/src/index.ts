// Public surface of the transparency log, for the dev server, the CLI and trust-root tooling.
export { LogService, startLogServer, handleCreateV2, transparencyLogEntryJson, v1ErrorFormatter, v2ErrorFormatter } from './service.ts';
export type { LogServiceOptions, TransparencyLogInstance, V2AddResult } from './service.ts';
export { monitorLog, monitorExitCode } from './monitor.ts';
export type { MonitorOptions, MonitorResult, MonitorMatch, MonitorPass, MonitorState } from './monitor.ts';
export { checkTreeId, fsckLog, verifyCheckpointNoteV1 } from './personality.ts';
export { findLogDirs, type FsckReport } from '@waxseal/tlog';
export { runLogServerMain } from './main.ts';
export { describeEntry } from './entries/describe.ts';
export type { EntryDescription } from './entries/describe.ts';
export { DEFAULT_POLICY } from './entries/common.ts';
export type { EntryPolicy } from './entries/common.ts';
export { TransparencyLog } from '@waxseal/tlog';
export type { LogStorage } from '@waxseal/tlog';
export { SqliteFileStorage } from '@waxseal/tlog';
