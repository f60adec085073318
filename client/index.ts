/**
 * Fleet's public SDK: the typed client, its errors and its auth.
 *
 * ```ts
 * import { FleetClient, FleetApiError } from './client';
 * ```
 */
export {
  DEFAULT_FLEET_URL,
  FleetClient,
  isFinished,
  type BatchPage,
  type BatchStatus,
  type BatchSummary,
  type DownloadedResults,
  type DownloadOptions,
  type ExportOptions,
  type FailedAttempt,
  type FleetClientOptions,
  type FleetManagerConfig,
  type FleetStatistics,
  type PageOptions,
  type RequestOptions,
  type ResultFilterOptions,
  type ResultPage,
  type ResultPageOptions,
  type ResultsExport,
  type ScaleResult,
  type SubmitOptions,
  type Task,
  type TaskDetail,
  type TaskResult,
  type TasksFileError,
  type TasksFileProgress,
  type TasksUpload,
  type Timeline,
  type WaitOptions,
  type WorkerInfo,
} from './fleet-client';
export { codeForStatus, FleetApiError, FleetError, FleetNetworkError, FleetTransferError, isFleetApiError, type FleetErrorCode } from './errors';
export {
  createAuthorizer,
  resolveAuth,
  type AwsCredentials,
  type AwsCredentialsProvider,
  type BearerAuth,
  type FleetAuth,
  type NoAuth,
  type OutgoingRequest,
  type RequestAuthorizer,
  type SigV4Auth,
} from './auth';
