// One peer's lifecycle on a dedicated Redis, timed step by step with the Redis CPU each costs.
// Usage: node peers.js '{"system":"rsmq"|"bullmq","port":6379,"n":5000,"inflight":16,"body":100}'
// Prints {"put":{"messages","seconds","cpu"}, ...} (cpu: Redis CPU seconds, INFO cpu delta).
'use strict';
const Redis = require('ioredis');

const args = JSON.parse(process.argv[2]);
const body = 'x'.repeat(args.body);
const connection = { host: '127.0.0.1', port: args.port, maxRetriesPerRequest: null };
const info = new Redis(connection);

async function redisCpu() {
  const text = await info.info('cpu');
  const field = (name) => Number(new RegExp(`${name}:([0-9.]+)`).exec(text)[1]);
  return field('used_cpu_user') + field('used_cpu_sys');
}

async function timed(messages, step) {
  const cpu = await redisCpu();
  const started = process.hrtime.bigint();
  await step();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { messages, seconds, cpu: (await redisCpu()) - cpu };
}

// n calls of op, `calls` of them in flight at any time.
async function inFlight(calls, n, op) {
  let next = 0;
  const worker = async () => { while (next < n) { const i = next++; await op(i); } };
  await Promise.all(Array.from({ length: calls }, worker));
}

async function rsmq() {
  const RedisSMQ = require('rsmq');
  const q = new RedisSMQ({ host: '127.0.0.1', port: args.port, ns: 'rsmq' });
  await q.createQueueAsync({ qname: 'bench' });
  const ids = [];
  const put = () => inFlight(args.inflight, args.n, () => q.sendMessageAsync({ qname: 'bench', message: body }));
  const reserve = () => inFlight(args.inflight, args.n, async () => {
    let m = {};
    while (!m.id) m = await q.receiveMessageAsync({ qname: 'bench' });
    ids.push(m.id);
  });
  const remove = () => inFlight(args.inflight, args.n, (i) => q.deleteMessageAsync({ qname: 'bench', id: ids[i] }));
  const out = { put: await timed(args.n, put), reserve: await timed(args.n, reserve), delete: await timed(args.n, remove) };
  q.quit();
  return out;
}

async function bullmq() {
  const { Queue, Worker } = require('bullmq');
  const queue = new Queue('bench', { connection });
  const opts = { removeOnComplete: true, removeOnFail: true };
  const put = async () => {
    for (let i = 0; i < args.n; i += 100) {
      await queue.addBulk(Array.from({ length: Math.min(100, args.n - i) }, () => ({ name: 'm', data: body, opts })));
    }
  };
  let worker;
  const consume = () => new Promise((resolve, reject) => {
    let done = 0;
    worker = new Worker('bench', async () => { if (++done === args.n) resolve(); }, { connection, concurrency: args.inflight });
    worker.on('error', reject);
  });
  const out = { put: await timed(args.n, put), consume: await timed(args.n, consume) };
  await worker.close();
  await queue.close();
  return out;
}

(async () => {
  const out = await { rsmq, bullmq }[args.system]();
  console.log(JSON.stringify(out));
  info.disconnect();
  process.exit(0);
})().catch((err) => { console.error(err); process.exit(1); });
