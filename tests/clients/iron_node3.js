// Drives IronMQ v3 through the official Node client (npm iron_mq 0.9.3, installed as iron_mq_v3)
// against the server named by IRON_SCHEME/IRON_HOST/IRON_PORT/IRON_TOKEN/IRON_PROJECT_ID.
// Usage: node iron_node3.js STEP QUEUE [ARGS...]; prints one JSON object of observations, and any
// client error fails the run (exit code 1).
//   lifecycle QUEUE                   a pull queue from creation to deletion
//   push QUEUE URL                    a push queue, its subscribers, a message posted to it
//   ack QUEUE ID RESERVATION NAME     a subscriber acknowledges the delivery it answered 202
const iron_mq = require("iron_mq_v3");
const { call, expectError } = require("./iron_node_helpers");

const client = new iron_mq.Client();
const [step, queueName, ...args] = process.argv.slice(2);
const q = client.queue(queueName);

async function lifecycle() {
  const out = {};
  out.created = await call(client.create_queue.bind(client), queueName, { message_timeout: 30, message_expiration: 3600 });
  out.firstId = await call(q.post.bind(q), "hello");
  out.ids = await call(q.post.bind(q), ["two", { body: "three", delay: 0 }]);
  out.info = await call(q.info.bind(q));
  out.listed = (await call(client.queues.bind(client), { prefix: queueName.slice(0, 4), per_page: 10 })).map((x) => x.name);
  out.peeked = (await call(q.peek_n.bind(q), { n: 5 })).map((m) => m.body);
  const [hello, two] = await call(q.reserve.bind(q), { n: 2, timeout: 60 });
  out.reserved = [hello.body, two.body, typeof hello.reservation_id];
  out.touched = await call(q.msg_touch.bind(q), two.id, two.reservation_id, { timeout: 120 });
  out.staleRelease = await expectError(q.msg_release.bind(q), two.id, two.reservation_id, {});
  out.release = await call(q.msg_release.bind(q), two.id, out.touched.reservation_id, {});
  const batch = await call(q.get_n.bind(q), { n: 10 });
  out.batch = batch.map((m) => [m.body, m.reserved_count]);
  out.byId = await call(q.msg_get.bind(q), batch[0].id);
  out.del = await call(q.del.bind(q), hello.id, { reservation_id: hello.reservation_id });
  out.delMultiple = await call(q.del_multiple.bind(q), { reservation_ids: batch });
  out.sizeAfter = (await call(q.info.bind(q))).size;
  out.missingMessage = await expectError(q.msg_get.bind(q), "1234567890123456789");
  await call(q.post.bind(q), "to clear");
  out.clear = await call(q.clear.bind(q));
  out.update = (await call(q.update.bind(q), { message_timeout: 45 })).queue.message_timeout;
  out.updateQueue = (await call(client.update_queue.bind(client), queueName, { message_expiration: 60 })).queue;
  out.delQueue = await call(q.del_queue.bind(q));
  out.missingQueue = await expectError(q.info.bind(q));
  out.missingReserve = await expectError(q.reserve.bind(q), {});
  return out;
}

async function push() {
  const [url] = args;
  const out = {};
  const subscribers = [{ name: "first", url, headers: { "X-Key": "1" } }];
  out.created = (await call(client.create_queue.bind(client), queueName, { type: "unicast", push: { subscribers, retries: 2 } })).queue;
  out.added = await call(q.add_subscribers.bind(q), [{ name: "second", url }, { name: "third", url }]);
  out.removed = await call(q.rm_subscribers.bind(q), { name: "third" });
  out.replaced = await call(q.rpl_subscribers.bind(q), [{ name: "first", url }, { name: "second", url }]);
  out.subscribers = (await call(q.info.bind(q))).push.subscribers.map((s) => s.name);
  out.id = await call(q.post.bind(q), "pushed");
  out.statuses = (await call(q.msg_push_statuses.bind(q), out.id)).subscribers;
  out.pullOnly = await expectError(client.update_queue.bind(client), queueName, { type: "pull" });
  return out;
}

async function ack() {
  const [id, reservationId, name] = args;
  const out = {};
  out.ack = await call(q.del_msg_push_status.bind(q), id, reservationId, name);
  out.statuses = (await call(q.msg_push_statuses.bind(q), id)).subscribers.map((s) => [s.name, s.status]);
  return out;
}

const steps = { lifecycle, push, ack };
steps[step]()
  .then((out) => console.log(JSON.stringify(out)))
  .catch((error) => {
    console.error("FAILED:", error.message, JSON.stringify(error.body));
    process.exit(1);
  });
