// Drives a full IronMQ v1 pull-queue lifecycle through the official Node client (npm iron_mq
// 0.2.4) against the server named by IRON_SCHEME/IRON_HOST/IRON_PORT/IRON_TOKEN/IRON_PROJECT_ID.
// Prints one JSON object of observations; any client error fails the run (exit code 1).
const iron_mq = require("iron_mq");
const { call, expectError } = require("./iron_node_helpers");

const client = new iron_mq.Client();
const queueName = process.argv[2] || "node-lifecycle";
const q = client.queue(queueName);

async function main() {
  const out = {};
  out.firstId = await call(q.post.bind(q), "hello");
  out.ids = await call(q.post.bind(q), ["two", { body: "three", timeout: 30, delay: 0 }]);
  out.info = await call(q.info.bind(q));
  out.peeked = (await call(q.peek_n.bind(q), { n: 5 })).map((m) => m.body);
  out.peekOne = (await call(q.peek.bind(q), {})).body;
  const one = await call(q.get.bind(q), {});
  out.got = { id: one.id, body: one.body, reserved_count: one.reserved_count, timeout: one.timeout };
  out.touch = await call(q.msg_touch.bind(q), one.id);
  out.release = await call(q.msg_release.bind(q), one.id, { delay: 0 });
  const batch = await call(q.get_n.bind(q), { n: 10, timeout: 60 });
  out.batch = batch.map((m) => [m.body, m.reserved_count]);
  out.byId = await call(q.msg_get.bind(q), batch[0].id);
  out.del = await call(q.del.bind(q), batch[0].id);
  out.delMultiple = await call(q.del_multiple.bind(q), batch.slice(1).map((m) => m.id));
  out.sizeAfter = (await call(q.info.bind(q))).size;
  out.queues = (await call(client.queues.bind(client), {})).map((x) => x.name);
  out.missingMessage = await expectError(q.msg_get.bind(q), "1234567890123456789");
  await call(q.post.bind(q), "to clear");
  out.clear = await call(q.clear.bind(q));
  out.update = (await call(q.update.bind(q), {})).name;
  out.delQueue = await call(q.del_queue.bind(q));
  out.missingQueue = await expectError(q.info.bind(q));
  out.emptyGet = await call(q.get_n.bind(q), { n: 2 });
  console.log(JSON.stringify(out));
}

main().catch((error) => {
  console.error("FAILED:", error.message, JSON.stringify(error.body));
  process.exit(1);
});
