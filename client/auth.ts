/**
 * How the client proves who it is. A deployed Fleet API uses IAM auth, so
 * requests are signed with SigV4 by the AWS SDK's own signer
 * (`@smithy/signature-v4`, SHA-256 from `@aws-crypto/sha256-js`); local mode
 * takes an optional bearer token. No crypto is written here.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';

/** AWS credentials, as the AWS SDK's credential providers resolve them. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

/** Resolves credentials on demand, e.g. `fromNodeProviderChain()` or `fromIni({ profile })`. */
export type AwsCredentialsProvider = () => Promise<AwsCredentials>;

/** Bearer token: local mode started with `FLEET_TOKEN`. */
export interface BearerAuth {
  type: 'bearer';
  token: string;
}

/** SigV4 for the IAM-authorized API Gateway of a deployed Fleet. */
export interface SigV4Auth {
  type: 'sigv4';
  /** The API's region, e.g. `eu-west-1`. */
  region: string;
  /**
   * Static credentials or a provider.
   * @default the AWS SDK's default chain (`fromNodeProviderChain()`): environment, SSO, profile, web identity, container and instance roles
   */
  credentials?: AwsCredentials | AwsCredentialsProvider;
  /**
   * The service name the signature is scoped to.
   * @default 'execute-api'
   */
  service?: string;
}

/** No credentials at all: local mode on loopback without a token. */
export interface NoAuth {
  type: 'none';
}

export type FleetAuth = BearerAuth | SigV4Auth | NoAuth;

/** A request as the client is about to send it. */
export interface OutgoingRequest {
  method: string;
  url: URL;
  /** Lower-case header names. */
  headers: Record<string, string>;
  body?: string;
}

/** Returns the headers to send: the request's own plus those that authorize it. */
export type RequestAuthorizer = (request: OutgoingRequest) => Promise<Record<string, string>>;

/** `<api-id>.execute-api.<region>.amazonaws.com` (or `.com.cn`): the default host of a deployed API. */
const EXECUTE_API_HOST = /^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/;

/**
 * The auth a client uses when it is given none: a bearer token from
 * `FLEET_TOKEN`, else SigV4 when the URL is an API Gateway `execute-api`
 * host (the region is read from the host), else none.
 */
export function resolveAuth(url: URL, explicit?: FleetAuth, env: NodeJS.ProcessEnv = process.env): FleetAuth {
  if (explicit) return explicit;
  if (env.FLEET_TOKEN) return { type: 'bearer', token: env.FLEET_TOKEN };
  const region = EXECUTE_API_HOST.exec(url.hostname)?.[1];
  if (region) return { type: 'sigv4', region };
  return { type: 'none' };
}

/** Options for tests and special clocks; production code leaves them unset. */
export interface AuthorizerOptions {
  /** The signing time. @default () => new Date() */
  now?: () => Date;
}

/** Builds the authorizer for one client; a SigV4 signer is built once and reused for every request. */
export function createAuthorizer(auth: FleetAuth, options: AuthorizerOptions = {}): RequestAuthorizer {
  switch (auth.type) {
    case 'none':
      return ({ headers }) => Promise.resolve({ ...headers });
    case 'bearer': {
      if (!auth.token) throw new TypeError('bearer auth needs a non-empty token');
      const authorization = `Bearer ${auth.token}`;
      return ({ headers }) => Promise.resolve({ ...headers, authorization });
    }
    case 'sigv4':
      return createSigV4Authorizer(auth, options);
  }
}

function createSigV4Authorizer(auth: SigV4Auth, options: AuthorizerOptions): RequestAuthorizer {
  if (!auth.region) throw new TypeError('sigv4 auth needs a region');
  const now = options.now ?? (() => new Date());
  const signer = new SignatureV4({
    service: auth.service ?? 'execute-api',
    region: auth.region,
    credentials: auth.credentials ?? defaultCredentials(),
    sha256: Sha256,
    // API Gateway does not need x-amz-content-sha256 (that is S3's); the
    // payload hash is in the signature either way.
    applyChecksum: false,
  });
  return async ({ method, url, headers, body }) => {
    const query: Record<string, string | string[]> = {};
    for (const key of new Set(url.searchParams.keys())) {
      const values = url.searchParams.getAll(key);
      query[key] = values.length === 1 ? (values[0] ?? '') : values;
    }
    const signed = await signer.sign(
      {
        method,
        protocol: url.protocol,
        hostname: url.hostname,
        ...(url.port ? { port: Number(url.port) } : {}),
        path: url.pathname,
        query,
        // fetch sends exactly this Host (it omits default ports, as URL.host does).
        headers: { ...headers, host: url.host },
        ...(body !== undefined ? { body } : {}),
      },
      { signingDate: now() },
    );
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(signed.headers)) {
      // fetch sets Host itself and refuses to be given one.
      if (name.toLowerCase() !== 'host') out[name] = value;
    }
    return out;
  };
}

/**
 * The AWS SDK's default credential chain, loaded on first use: it pulls in
 * SSO and STS clients that a bearer-token or local user never needs.
 */
function defaultCredentials(): AwsCredentialsProvider {
  let provider: Promise<AwsCredentialsProvider> | undefined;
  return async () => {
    provider ??= import('@aws-sdk/credential-providers').then(({ fromNodeProviderChain }) => fromNodeProviderChain());
    return (await provider)();
  };
}
