/**
 * The local Step Functions' execution journal: what survives the local fleet
 * being killed, so its executions resume when it starts again.
 *
 * On AWS a Standard execution outlives any machine: the service keeps its
 * history. Locally the executions live in one process, so this journal keeps
 * what a resumed execution needs, one JSON line per event, appended as it
 * happens (`<dataDir>/executions.jsonl`):
 *
 *   start  an execution started: its ARN, name, input and start date
 *   state  it entered a top-level state, with that state's input
 *   map    a Distributed Map started a Map Run
 *   launch a child of the Map Run was launched
 *   child  a child ended, with its output (or error)
 *   conc   UpdateMapRun changed the Map Run's MaxConcurrency
 *   end    the execution ended
 *   redrive  RedriveExecution restarted a failed execution
 *
 * On start, every execution without an `end` resumes at the state it was in,
 * with that state's input; a Map Run it was in skips the children that had
 * ended, as a redriven Map Run does, and runs the others (those in flight
 * when the fleet stopped run again). Lines are written with a synchronous
 * write(2), so a line is in the kernel before the interpreter goes on: killing
 * the process loses nothing written. (A power cut may: nothing is fsynced, as
 * dynalite's own writes are not.)
 *
 * The file only grows while executions run; finished executions are dropped
 * when it is compacted: at every start, and while running once it passes
 * COMPACT_BYTES. Failed executions are kept for REDRIVE_DAYS, since they can
 * still be redriven.
 */
import { closeSync, existsSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import type { ChildOutcome, ChildRecord, ExecutionCheckpoint, MapRun, ResumedMapRun } from './asl/interpreter';

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'TIMED_OUT';

/** Statuses RedriveExecution accepts (AWS: FAILED, ABORTED, TIMED_OUT; Fleet redrives only the first and last). */
export const REDRIVABLE: ReadonlySet<ExecutionStatus> = new Set(['FAILED', 'TIMED_OUT']);

/** AWS lets an execution be redriven for 14 days after it stopped. */
export const REDRIVE_DAYS = 14;

/** Compact the file while running once it is this large. */
export const COMPACT_BYTES = 64 * 1024 * 1024;

/** One journal line. `x` numbers the execution, `m` its Map Run, both within this file. */
export type JournalEntry =
  | { e: 'start'; x: number; arn: string; sm: string; name: string; input: string; at: string }
  | { e: 'state'; x: number; name: string; input: unknown; h?: number }
  | { e: 'map'; x: number; m: number; state: string; arn: string }
  | { e: 'conc'; x: number; m: number; c: number }
  | { e: 'launch'; x: number; m: number; i: number }
  | { e: 'child'; x: number; m: number; i: number; o?: unknown; err?: string; cause?: string; r?: ChildRecord }
  | { e: 'end'; x: number; status: ExecutionStatus; at: string; error?: string; cause?: string; output?: string }
  | { e: 'redrive'; x: number; at: string };

/** A Map Run as the journal knows it. */
export interface JournaledMapRun {
  seq: number;
  stateName: string;
  arn: string;
  maxConcurrency?: number;
  /** Children that ended, by item index. */
  children: Map<number, ChildOutcome>;
  /** Set when the execution is resumed or redriven: the Map state adopts this Map Run instead of starting a new one. */
  resumable: boolean;
}

/** What the journal knows of one execution. */
export interface JournaledExecution {
  id: number;
  executionArn: string;
  stateMachineArn: string;
  name: string;
  input: string;
  startDate: Date;
  /** The last top-level state entered and its input: where a resumed execution continues. */
  state?: { name: string; input: unknown; historyEvents?: number };
  /** The Map Run of the current state, if that state is a Distributed Map. */
  mapRun?: JournaledMapRun;
  /** Absent while it runs. */
  end?: { status: ExecutionStatus; stopDate: Date; error?: string; cause?: string; output?: string };
  redriveCount: number;
  redriveDate?: Date;
}

const outcomeOf = (entry: Extract<JournalEntry, { e: 'child' }>): ChildOutcome =>
  entry.err !== undefined
    ? { status: 'FAILED', error: entry.err, cause: entry.cause ?? '', ...(entry.r ? { record: entry.r } : {}) }
    : { status: 'SUCCEEDED', output: entry.o ?? null, ...(entry.r ? { record: entry.r } : {}) };

/** Parses a journal file; a torn last line (the process killed mid-write) is dropped, any other bad line is an error. */
export function readJournal(file: string): JournalEntry[] {
  if (!existsSync(file)) return [];
  const lines = readFileSync(file, 'utf8').split('\n');
  const entries: JournalEntry[] = [];
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n] ?? '';
    if (line.trim() === '') continue;
    try {
      entries.push(JSON.parse(line) as JournalEntry);
    } catch {
      const rest = lines.slice(n + 1).some((l) => l.trim() !== '');
      if (rest) throw new Error(`${file}: line ${n + 1} is not JSON; the execution journal is damaged (move it away to start without it)`);
    }
  }
  return entries;
}

/**
 * The journal: always kept in memory (it also serves RedriveExecution), and
 * on disk when opened on a file.
 */
export class ExecutionJournal {
  private readonly executions = new Map<number, JournaledExecution>();
  private nextExecution = 1;
  private nextMapRun = 1;
  private fd: number | undefined;
  private bytes = 0;
  private closed = false;

  private constructor(private readonly file: string | undefined) {}

  /** A journal that persists nothing (FLEET_IN_MEMORY). */
  static inMemory(): ExecutionJournal {
    return new ExecutionJournal(undefined);
  }

  /** Replays `file`, compacts it, and appends to it from here on. */
  static open(file: string): ExecutionJournal {
    const journal = new ExecutionJournal(file);
    for (const entry of readJournal(file)) journal.apply(entry);
    for (const execution of journal.executions.values()) {
      if (execution.mapRun) execution.mapRun.resumable = true;
    }
    journal.compact();
    return journal;
  }

  /** Executions that were running when the journal was last written: the ones to resume. */
  running(): JournaledExecution[] {
    return [...this.executions.values()].filter((e) => !e.end);
  }

  /** Executions that ended and are kept (failed ones, for redrive). */
  ended(): JournaledExecution[] {
    return [...this.executions.values()].filter((e) => e.end);
  }

  started(execution: { executionArn: string; stateMachineArn: string; name: string; input: string; startDate: Date }): JournaledExecution {
    const x = this.nextExecution;
    this.write({ e: 'start', x, arn: execution.executionArn, sm: execution.stateMachineArn, name: execution.name, input: execution.input, at: execution.startDate.toISOString() });
    return this.get(x);
  }

  /** UpdateMapRun on the execution's current Map Run. */
  concurrencyChanged(x: number, mapRunArn: string, maxConcurrency: number): void {
    const mapRun = this.executions.get(x)?.mapRun;
    if (mapRun?.arn === mapRunArn) this.write({ e: 'conc', x, m: mapRun.seq, c: maxConcurrency });
  }

  endedWith(x: number, end: { status: ExecutionStatus; stopDate: Date; error?: string; cause?: string; output?: string }): void {
    if (!this.executions.has(x)) return;
    this.write({
      e: 'end',
      x,
      status: end.status,
      at: end.stopDate.toISOString(),
      ...(end.error !== undefined ? { error: end.error } : {}),
      ...(end.cause !== undefined ? { cause: end.cause } : {}),
      ...(end.output !== undefined ? { output: end.output } : {}),
    });
    if (this.file && this.bytes > COMPACT_BYTES) this.compact();
  }

  /**
   * RedriveExecution: the execution runs again from the state it failed in;
   * its Map Run, if it failed in one, keeps the children that succeeded and
   * runs the failed ones again.
   */
  redriven(x: number, at: Date): JournaledExecution {
    this.write({ e: 'redrive', x, at: at.toISOString() });
    return this.get(x);
  }

  /** The interpreter's hooks for one execution. `resuming`: it continues where it was, instead of starting. */
  checkpointFor(x: number, resuming: boolean): ExecutionCheckpoint {
    const execution = this.get(x);
    let first = resuming;
    return {
      stateEntered: (name, input, historyEvents) => {
        // A resumed execution re-enters the state the journal already has.
        if (first) {
          first = false;
          if (execution.state?.name === name) return;
        }
        // The history count goes with it, so a resumed execution keeps counting toward its 25,000 events.
        this.write({ e: 'state', x, name, input, ...(historyEvents !== undefined ? { h: historyEvents } : {}) });
      },
      mapRunStarting: (stateName): ResumedMapRun | undefined => {
        const mapRun = execution.mapRun;
        if (!mapRun?.resumable || mapRun.stateName !== stateName) return undefined;
        mapRun.resumable = false;
        return { arn: mapRun.arn, ...(mapRun.maxConcurrency !== undefined ? { maxConcurrency: mapRun.maxConcurrency } : {}), children: mapRun.children };
      },
      mapRunStarted: (stateName, mapRun: MapRun) => {
        if (execution.mapRun?.arn === mapRun.arn) return; // resumed
        this.write({ e: 'map', x, m: this.nextMapRun, state: stateName, arn: mapRun.arn });
      },
      childLaunched: (mapRun, index) => {
        const current = execution.mapRun;
        if (current?.arn === mapRun.arn) this.write({ e: 'launch', x, m: current.seq, i: index });
      },
      childEnded: (mapRun, index, outcome) => {
        const current = execution.mapRun;
        if (current?.arn !== mapRun.arn) return;
        this.write({
          e: 'child',
          x,
          m: current.seq,
          i: index,
          ...(outcome.status === 'SUCCEEDED' ? { o: outcome.output } : { err: outcome.error, cause: outcome.cause }),
          ...(outcome.record ? { r: outcome.record } : {}),
        });
      },
    };
  }

  /** Stops journaling: what happens after this is not kept (the process is about to exit). */
  close(): void {
    this.closed = true;
    this.closeFile();
  }

  private closeFile(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private get(x: number): JournaledExecution {
    const execution = this.executions.get(x);
    if (!execution) throw new Error(`the journal has no execution ${x}`);
    return execution;
  }

  /** Applies an entry to the in-memory model, then appends it to the file. */
  private write(entry: JournalEntry): void {
    if (this.closed) return;
    this.apply(entry);
    if (!this.file) return;
    const line = `${JSON.stringify(entry)}\n`;
    this.fd ??= openSync(this.file, 'a');
    this.bytes += writeSync(this.fd, line);
  }

  private apply(entry: JournalEntry): void {
    if (entry.e === 'start') {
      this.executions.set(entry.x, {
        id: entry.x,
        executionArn: entry.arn,
        stateMachineArn: entry.sm,
        name: entry.name,
        input: entry.input,
        startDate: new Date(entry.at),
        redriveCount: 0,
      });
      this.nextExecution = Math.max(this.nextExecution, entry.x + 1);
      return;
    }
    const execution = this.executions.get(entry.x);
    if (!execution) return; // its start was compacted away: it had ended
    switch (entry.e) {
      case 'state':
        execution.state = { name: entry.name, input: entry.input, ...(entry.h !== undefined ? { historyEvents: entry.h } : {}) };
        // A new state: the previous one (and its Map Run) is over.
        execution.mapRun = undefined;
        break;
      case 'map':
        execution.mapRun = { seq: entry.m, stateName: entry.state, arn: entry.arn, children: new Map(), resumable: false };
        this.nextMapRun = Math.max(this.nextMapRun, entry.m + 1);
        break;
      case 'conc':
        if (execution.mapRun?.seq === entry.m) execution.mapRun.maxConcurrency = entry.c;
        break;
      case 'launch':
        break;
      case 'child':
        if (execution.mapRun?.seq === entry.m) execution.mapRun.children.set(entry.i, outcomeOf(entry));
        break;
      case 'end':
        execution.end = {
          status: entry.status,
          stopDate: new Date(entry.at),
          ...(entry.error !== undefined ? { error: entry.error } : {}),
          ...(entry.cause !== undefined ? { cause: entry.cause } : {}),
          ...(entry.output !== undefined ? { output: entry.output } : {}),
        };
        // Only a redrive needs its progress again; a finished execution's is dropped.
        if (!REDRIVABLE.has(entry.status)) this.executions.delete(entry.x);
        break;
      case 'redrive':
        execution.end = undefined;
        execution.redriveCount++;
        execution.redriveDate = new Date(entry.at);
        if (execution.mapRun) {
          // A redriven Map Run runs its failed children again.
          for (const [index, outcome] of execution.mapRun.children) if (outcome.status === 'FAILED') execution.mapRun.children.delete(index);
          execution.mapRun.resumable = true;
        }
        break;
    }
  }

  /**
   * Rewrites the file with what is still needed: the executions that run,
   * and failed ones that can still be redriven. Their lines are kept as they
   * were, `launch` lines included, so the file stays their full history.
   */
  private compact(): void {
    if (!this.file) return;
    const cutoff = Date.now() - REDRIVE_DAYS * 86_400_000;
    for (const [x, execution] of this.executions) {
      if (execution.end && execution.end.stopDate.getTime() < cutoff) this.executions.delete(x);
    }
    const keep = new Set(this.executions.keys());
    const lines = readJournal(this.file)
      .filter((entry) => keep.has(entry.x))
      .map((entry) => `${JSON.stringify(entry)}\n`)
      .join('');
    this.closeFile();
    const temporary = `${this.file}.tmp`;
    writeFileSync(temporary, lines);
    renameSync(temporary, this.file);
    this.bytes = Buffer.byteLength(lines);
    this.fd = openSync(this.file, 'a');
  }
}
