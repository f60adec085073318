/**
 * `fleet dashboard` in front of a deployed fleet: its forwarded calls are
 * SigV4-signed for API Gateway (`execute-api`, the stage kept in the path),
 * carry nothing of the page's own (its session token stays here), and the
 * API's answers come back as they are. The deployed API is a fake fetch here;
 * test/local/dashboard-api.test.ts and the browser test run it against real
 * local fleets with a bearer token.
 * SigV4 for API Gateway IAM auth: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-access-control-iam.html
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../client/cli';
import { serveDashboard, type DashboardServer } from '../../client/dashboard-server';

let server: DashboardServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

interface Seen {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
}

describe('serveDashboard with SigV4', () => {
  it('signs each forwarded call as execute-api in the URL’s region, keeps the stage, and drops the page’s token', async () => {
    const seen: Seen[] = [];
    const fakeFetch = (async (input: URL | string, init: RequestInit = {}) => {
      seen.push({ url: String(input), method: init.method ?? 'GET', headers: init.headers as Record<string, string>, body: init.body as string | undefined });
      return new Response(JSON.stringify({ message: 'Forbidden' }), { status: 403, headers: { 'content-type': 'application/json' } });
    }) as typeof fetch;
    server = await serveDashboard({
      url: 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod/',
      auth: { type: 'sigv4', region: 'eu-west-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' } },
      fetch: fakeFetch,
    });
    const answer = await fetch(`${server.origin}/batches/b-1/results?status=failed&limit=5`, { headers: { authorization: `Bearer ${server.sessionToken}`, cookie: 'x=1' } });
    // API Gateway's own refusal comes back untouched, for the page to show.
    expect(answer.status).toBe(403);
    expect(await answer.json()).toEqual({ message: 'Forbidden' });

    const scaled = await fetch(`${server.origin}/workers/scale`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.sessionToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ count: 3 }),
    });
    expect(scaled.status).toBe(403);

    expect(seen.map((s) => [s.method, s.url])).toEqual([
      ['GET', 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod/batches/b-1/results?status=failed&limit=5'],
      ['POST', 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod/workers/scale'],
    ]);
    for (const call of seen) {
      expect(call.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$/);
      expect(call.headers['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
      expect(call.headers.cookie).toBeUndefined();
      expect(JSON.stringify(call.headers)).not.toContain(server.sessionToken);
    }
    expect(seen[1]?.body).toBe('{"count":3}');
    expect(seen[1]?.headers['content-type']).toBe('application/json');
  });

  it('listens on 127.0.0.1 only, on the port asked for', async () => {
    const probe = await serveDashboard({ url: 'http://127.0.0.1:9', auth: { type: 'none' } });
    const port = probe.port;
    await probe.close();
    server = await serveDashboard({ url: 'http://127.0.0.1:9', auth: { type: 'none' }, port });
    expect(server.port).toBe(port);
    expect(server.origin).toBe(`http://127.0.0.1:${port}`);
    expect(server.url).toBe(`http://127.0.0.1:${port}/?token=${server.sessionToken}`);
  });
});

describe('fleet dashboard usage', () => {
  class Capture extends Writable {
    text = '';
    override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
      this.text += chunk.toString('utf8');
      done();
    }
  }
  const run = async (argv: string[]) => {
    const stderr = new Capture();
    const code = await main(argv, { stdout: new Capture(), stderr, stdin: process.stdin, env: {} });
    return { code, stderr: stderr.text };
  };

  it('refuses a bad port, arguments, and --sigv4 without a region (exit 2)', async () => {
    expect(await run(['dashboard', '--port', '70000'])).toEqual({ code: 2, stderr: expect.stringContaining('--port must be from 0 to 65535') });
    expect(await run(['dashboard', 'extra'])).toEqual({ code: 2, stderr: expect.stringContaining('unexpected "extra"') });
    expect(await run(['dashboard', '--url', 'https://fleet.example.com', '--sigv4'])).toEqual({ code: 2, stderr: expect.stringContaining('--sigv4 needs a region') });
    expect(await run(['status', 'b', '--port', '1'])).toEqual({ code: 2, stderr: expect.stringContaining('--port is not an option of "status"') });
  });
});
