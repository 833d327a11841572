// Reads the worker's JSON log lines captured during the integration run.
import { readFileSync } from 'node:fs';

/** The request log line with `requestId`, waiting briefly for it to be flushed. */
export async function logLine(requestId) {
  for (let i = 0; i < 50; i++) {
    const line = readFileSync(process.env.EDGECHAT_WORKER_LOG, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('{') && l.includes(`"request_id":"${requestId}"`) && l.includes('"msg":"request"'));
    if (line) return JSON.parse(line);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no log line for request ${requestId}`);
}
