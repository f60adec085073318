/**
 * Transient-fault injection for local mode: AWS services fail now and then
 * (throttles, 500s), and a fleet must ride that out with its retries. Local
 * services never do on their own, so this makes them, at given rates, with
 * the error each service really sends.
 *
 * One setting: FLEET_FAULTS (or startLocalFleet's `faults`), a comma-separated
 * list of `service=rate` pairs plus an optional `seed`:
 *
 *   FLEET_FAULTS="lambda=0.02,dynamodb=0.01,s3=0.01,sfn=0.02,seed=42"
 *
 * Each rate is the probability (0 to 1) that one request to that service
 * fails. The decisions come from a seeded PRNG, one stream per service, and
 * the seed is printed at start, so a failing run replays with the same value.
 * See docs/local-mode-faults.md.
 */

export const FAULT_SERVICES = ['lambda', 'dynamodb', 's3', 'sfn'] as const;
export type FaultService = (typeof FAULT_SERVICES)[number];

export interface FaultProfile {
  /** Probability, from 0 to 1, that one request to the service fails. Absent: never. */
  rates: Partial<Record<FaultService, number>>;
  /** Seeds the PRNG. */
  seed: number;
}

/** Parses the FLEET_FAULTS format; a wrong key or rate fails with its name. */
export function parseFaults(spec: string, randomSeed: () => number = () => Math.floor(Math.random() * 2 ** 31)): FaultProfile {
  const rates: Partial<Record<FaultService, number>> = {};
  let seed: number | undefined;
  for (const part of spec.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new Error(`FLEET_FAULTS: "${part}" is not key=value (e.g. lambda=0.02,seed=42)`);
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 'seed') {
      if (!/^\d{1,10}$/.test(value)) throw new Error(`FLEET_FAULTS: seed must be a whole number, got "${value}"`);
      seed = Number(value) >>> 0;
      continue;
    }
    if (!(FAULT_SERVICES as readonly string[]).includes(key)) {
      throw new Error(`FLEET_FAULTS: unknown service "${key}"; use ${FAULT_SERVICES.join(', ')} or seed`);
    }
    const rate = Number(value);
    if (value === '' || !Number.isFinite(rate) || rate < 0 || rate > 1) throw new Error(`FLEET_FAULTS: ${key} must be a rate from 0 to 1, got "${value}"`);
    rates[key as FaultService] = rate;
  }
  return { rates, seed: seed ?? randomSeed() >>> 0 };
}

/** Writes a profile back in the FLEET_FAULTS format, seed included: the line that replays a run. */
export function formatFaults(profile: FaultProfile): string {
  const parts = FAULT_SERVICES.filter((s) => profile.rates[s] !== undefined).map((s) => `${s}=${profile.rates[s]}`);
  return [...parts, `seed=${profile.seed}`].join(',');
}

/** mulberry32: small, fast and good enough to decide faults; the same seed gives the same sequence. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Decides, request by request, whether a service fails and with which of its
 * errors. Each service has its own PRNG stream (seeded from the seed and the
 * service), so one service's traffic does not shift another's decisions.
 */
export class FaultInjector {
  private readonly streams: Record<FaultService, () => number>;
  /** Faults injected so far, per service (tests and the log read it). */
  readonly injected: Record<FaultService, number> = { lambda: 0, dynamodb: 0, s3: 0, sfn: 0 };

  constructor(readonly profile: FaultProfile) {
    const stream = (index: number) => mulberry32(profile.seed + (index + 1) * 0x9e3779b9);
    this.streams = { lambda: stream(0), dynamodb: stream(1), s3: stream(2), sfn: stream(3) };
  }

  /** Whether any service has a non-zero rate. */
  get active(): boolean {
    return FAULT_SERVICES.some((s) => (this.profile.rates[s] ?? 0) > 0);
  }

  /**
   * One request to `service`: returns the error to answer with (one of
   * `errors`, chosen by the same stream), or undefined to let it through.
   */
  decide<T>(service: FaultService, errors: readonly T[]): T | undefined {
    const rate = this.profile.rates[service] ?? 0;
    if (rate <= 0 || errors.length === 0) return undefined;
    const next = this.streams[service];
    if (next() >= rate) return undefined;
    this.injected[service]++;
    return errors[Math.floor(next() * errors.length)];
  }
}

/** The injector a local fleet uses: from the option, else FLEET_FAULTS, else none. Prints the replay line. */
export function faultInjectorFrom(option: string | FaultProfile | undefined, log: (line: string) => void = console.log): FaultInjector | undefined {
  const spec = option ?? process.env.FLEET_FAULTS;
  if (spec === undefined || spec === '') return undefined;
  const profile = typeof spec === 'string' ? parseFaults(spec) : spec;
  const injector = new FaultInjector(profile);
  if (!injector.active) return undefined;
  log(`fleet: injecting transient AWS faults; replay with FLEET_FAULTS="${formatFaults(profile)}"`);
  return injector;
}
