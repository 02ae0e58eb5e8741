// What notifications are delivered to in tests: a real webhook receiver (node:http on port 0)
// that answers as the test scripts it, and a real SMTP server (the smtp-server package).
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import type { TestGateway } from './helpers.ts';

export interface Hook {
  headers: IncomingHttpHeaders;
  body: string;
  json: { type: string; id: string; timestamp: string; data: Record<string, unknown> };
}

/** What the receiver answers the nth request (from 1): a status (now or later), or 'hang' (never answers). */
export type Answer = (n: number, hook: Hook) => number | Promise<number> | 'hang';

export interface Receiver {
  url: string;
  port: number;
  /** Every request received, answered or not. */
  hooks: Hook[];
  /** Only those answered 2xx. */
  accepted(): Hook[];
  answer: Answer;
  /** Requests waiting for an answer ('hang'). */
  hanging(): number;
  close(): Promise<void>;
}

export async function startReceiver(answer: Answer = () => 200, port = 0): Promise<Receiver> {
  const hooks: Hook[] = [];
  const statuses: number[] = [];
  const hung = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const hook: Hook = { headers: req.headers, body, json: JSON.parse(body) as Hook['json'] };
      hooks.push(hook);
      const a = receiver.answer(hooks.length, hook);
      const i = statuses.push(0) - 1;
      if (a === 'hang') {
        hung.add(res);
        res.on('close', () => hung.delete(res));
        return;
      }
      void Promise.resolve(a).then((status) => {
        statuses[i] = status;
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(status < 300 ? 'ok' : 'no');
      });
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const bound = (server.address() as AddressInfo).port;
  const receiver: Receiver = {
    url: `http://127.0.0.1:${bound}/hooks/tollgate`,
    port: bound,
    hooks,
    accepted: () => hooks.filter((_, i) => statuses[i] >= 200 && statuses[i] < 300),
    answer,
    hanging: () => hung.size,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
  return receiver;
}

export interface Mail {
  from: string;
  to: string[];
  subject: string;
  messageId: string;
  text: string;
  raw: string;
}

export interface Smtp {
  url: string;
  mails: Mail[];
  close(): Promise<void>;
}

/** An SMTP server on 127.0.0.1 without TLS or auth, keeping every message. */
export async function startSmtp(): Promise<Smtp> {
  const mails: Mail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        mails.push({ ...parse(raw), from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), raw });
        callback();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.server.address() as AddressInfo;
  return { url: `smtp://127.0.0.1:${port}`, mails, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** The subject, Message-ID and plain-text body of a message as nodemailer writes it. */
function parse(raw: string): { subject: string; messageId: string; text: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  const header = (name: string) => new RegExp(`^${name}: (.*)$`, 'mi').exec(head)?.[1] ?? '';
  let text = raw.slice(split + 4);
  if (/quoted-printable/i.test(header('Content-Transfer-Encoding'))) {
    text = Buffer.from(text.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
  }
  return { subject: decodeWords(header('Subject')), messageId: header('Message-ID'), text: text.replace(/\r\n/g, '\n') };
}

/** RFC 2047 encoded words (=?UTF-8?Q?…?= or =?UTF-8?B?…?=) in a header. */
function decodeWords(v: string): string {
  return v.replace(/=\?UTF-8\?([QB])\?([^?]*)\?=\s?/gi, (_, enc: string, s: string) => enc.toUpperCase() === 'B'
    ? Buffer.from(s, 'base64').toString('utf8')
    : Buffer.from(s.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, (__, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8'));
}

/** Writes what the gateway holds, then runs one round of the deliverer now (tests poll it by hand). */
export async function deliver(gw: TestGateway): Promise<void> {
  gw.flush();
  await gw.app.deliverer!.tick();
}
