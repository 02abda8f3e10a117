// Push-queue settings, push statuses and alerts through the official Node client (npm iron_mq
// 0.2.4) against the server named by IRON_SCHEME/IRON_HOST/IRON_PORT/IRON_TOKEN/IRON_PROJECT_ID.
// Prints one JSON object of observations; any client error fails the run (exit code 1).
const iron_mq = require("iron_mq");
const { call, expectError } = require("./iron_node_helpers");

const client = new iron_mq.Client();
const queueName = process.argv[2] || "node-push";
const q = client.queue(queueName);
const watched = client.queue(queueName + "-watched");

async function main() {
  const out = {};
  out.updated = await call(q.update.bind(q), { push_type: "unicast", retries: 2, subscribers: [{ url: "http://a.example/hook" }] });
  out.added = await call(q.add_subscribers.bind(q), { url: "http://b.example/hook" });
  out.removed = await call(q.rm_subscribers.bind(q), { url: "http://a.example/hook" });
  const id = await call(q.post.bind(q), "pushed");
  out.statuses = await call(q.msg_push_statuses.bind(q), id);
  out.ack = await call(q.del_msg_push_status.bind(q), id, id + "01");
  out.alertOnPush = await expectError(q.add_alerts.bind(q), { type: "fixed", trigger: 1, queue: "x" });
  out.addAlerts = await call(watched.add_alerts.bind(watched), [{ type: "fixed", trigger: 5, queue: "alerts" }]);
  out.updateAlerts = await call(watched.update_alerts.bind(watched), [
    { type: "progressive", trigger: 10, queue: "alerts", direction: "desc" },
    { type: "fixed", trigger: 3, queue: "alerts" },
  ]);
  const alerts = (await call(watched.info.bind(watched))).alerts;
  out.alerts = alerts.map((a) => [a.type, a.trigger, a.direction]);
  out.deleteAlerts = await call(watched.delete_alerts.bind(watched), [{ id: alerts[0].id }]);
  out.deleteById = await call(watched.delete_alert_by_id.bind(watched), alerts[1].id);
  out.missingAlert = await expectError(watched.delete_alert_by_id.bind(watched), alerts[1].id);
  out.alertsLeft = (await call(watched.info.bind(watched))).alerts || [];
  console.log(JSON.stringify(out));
}

main().catch((error) => {
  console.error("FAILED:", error.message, JSON.stringify(error.body));
  process.exit(1);
});
