/**
 * `npm start`: the local fleet on http://127.0.0.1:3000.
 *
 * Environment: PORT, HOST (loopback unless FLEET_TOKEN is set), FLEET_TOKEN,
 * FLEET_ALLOWED_HOSTS (host names served besides loopback's, comma separated),
 * FLEET_DATA_DIR (default .fleet-data), FLEET_IN_MEMORY=1,
 * FLEET_RETRY_UNIT_MS (ms per second of retry delay; default 1000, as on AWS),
 * FLEET_MAX_TASKS_PER_BATCH, FLEET_DRAIN_MS (how long SIGTERM/SIGINT lets
 * running tasks finish; default 10000), FLEET_AUTOSCALE_INTERVAL_MS (ms between
 * autoscaler runs when infra/fleet-config.ts turns autoscaling on; default the
 * schedule's minute), FLEET_LAMBDA_CONCURRENCY (Lambda's account concurrency;
 * default 1000), FLEET_FAULTS (transient AWS faults to inject, e.g.
 * "lambda=0.02,dynamodb=0.01,seed=42"; see docs/local-mode-faults.md).
 * Each is checked at start (settings.ts): a wrong one stops it, naming the variable.
 *
 * Stopping: SIGTERM or Ctrl-C stops launching tasks, lets running ones finish
 * (up to FLEET_DRAIN_MS), and exits 0; batches that were running resume on the
 * next start. A second signal exits at once, and they still resume: the
 * execution journal is consistent at every moment, even under SIGKILL.
 *
 * One Ctrl-C under `npm start` arrives here twice: the terminal signals the
 * whole foreground process group, and npm passes its own copy on to the
 * script it runs. So the same signal again within SAME_SIGNAL_MS is that one
 * keypress, not a second. (`npm start` runs this file with
 * `node --import tsx`, not the tsx CLI: the CLI relays signals to its child
 * itself, re-sending one the child did not acknowledge within 30 ms, and then
 * SIGKILLs it; a fleet busy for 30 ms would lose its drain. The script `exec`s
 * node, so npm waits for the fleet and a signal sent to npm alone reaches it.)
 */
import { fleetPropsFor } from '../fleet-config';
import { DataFolderInUseError } from './data-folder-lock';
import { startLocalFleet } from './local-fleet';
import { parseMainSettings } from './settings';

// Parsed before anything starts: a wrong variable fails here, naming it.
const { drainMs, ...settings } = parseMainSettings(process.env);
const fleet = await startLocalFleet({ fleetProps: fleetPropsFor('local'), ...settings }).catch((error: unknown) => {
  // The commonest failed starts (a second `npm start`, another server on 3000): one line that says what to do.
  // startLocalFleet has already closed what it started.
  if (error instanceof DataFolderInUseError) console.error(`fleet: ${error.message}`);
  else if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
    console.error(`fleet: ${settings.host}:${String(settings.port)} is already in use (another fleet, or another server): set PORT to a free port, e.g. PORT=3001 npm start`);
  } else throw error;
  process.exit(1);
});
console.log(`Fleet is running locally at ${fleet.url}`);
if (fleet.resumedExecutions > 0) console.log(`  resumed: ${fleet.resumedExecutions} batch execution(s) that were running when the fleet last stopped`);
// The page can't know the token: it takes it from ?token= once, then keeps it in the tab.
console.log(`  dashboard: ${fleet.url}/${settings.token ? '?token=<FLEET_TOKEN>' : ''}`);
console.log(`  submit:  curl -s -X POST ${fleet.url}/batches -H 'content-type: application/json' -d '{"tasks":[{"id":"t1","type":"echo","data":{"hello":"fleet"}}]}'`);
// FleetProps.autoscaling (infra/fleet-config.ts): the template's schedule runs on a timer.
for (const schedule of fleet.resources.schedules) console.log(`  autoscaling: ${JSON.stringify(schedule.input)}`);
console.log('  stop:    Ctrl-C');

/** Copies of one signal (the terminal's and npm's) arrive well within this; a person's second Ctrl-C comes later. */
const SAME_SIGNAL_MS = 1_000;
let first: { signal: string; at: number } | undefined;
const stop = (signal: string) => {
  const at = performance.now();
  if (first) {
    if (signal === first.signal && at - first.at < SAME_SIGNAL_MS) return;
    console.log(`${signal} again: exiting now; running batches resume on the next start`);
    process.exit(1);
  }
  first = { signal, at };
  console.log(`\n${signal}: stopping the local fleet (running tasks get up to ${drainMs} ms to finish; signal again to exit at once)...`);
  fleet.close({ drainMs }).then(
    ({ drained }) => {
      console.log(drained ? 'stopped: every running task finished' : 'stopped: tasks still running will run again on the next start');
      process.exit(0);
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
};
process.on('SIGINT', () => { stop('SIGINT'); });
process.on('SIGTERM', () => { stop('SIGTERM'); });
