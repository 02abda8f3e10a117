"use strict";
// FerryMQ dashboard: swaps in fragments the server renders, draws the put/delete rate chart from
// the queues' counters, and asks before an action. No library, no build step.
(() => {
  const POLL_MS = 2000;
  const SAMPLES = 60; // two minutes of rates at one poll every 2 s
  const target = document.querySelector("[data-poll]");
  const canvas = document.getElementById("rates");
  const rates = []; // {put, deleted} per second, oldest first
  let last = null; // the previous totals and when they were read

  async function poll() {
    try {
      const response = await fetch(target.dataset.poll, { headers: { accept: "application/json" } });
      if (response.status === 401) return location.assign("/dashboard");
      if (!response.ok) return;
      const fresh = await response.json();
      target.innerHTML = fresh.html; // server-rendered and escaped
      if (fresh.totals && canvas) addSample(fresh.totals);
    } catch (error) {
      // the server is restarting or unreachable: try again at the next tick
    }
  }

  function addSample(totals) {
    const now = performance.now();
    if (last) {
      const seconds = Math.max((now - last.at) / 1000, 0.001);
      const rate = (key) => Math.max(totals[key] - last.totals[key], 0) / seconds; // a deleted queue resets
      rates.push({ put: rate("put"), deleted: rate("deleted") });
      if (rates.length > SAMPLES) rates.shift();
      document.getElementById("put-rate").textContent = rates.at(-1).put.toFixed(1);
      document.getElementById("delete-rate").textContent = rates.at(-1).deleted.toFixed(1);
      draw();
    }
    last = { at: now, totals };
  }

  function draw() {
    const g = canvas.getContext("2d");
    const { width, height } = canvas;
    const top = Math.max(1, ...rates.map((r) => Math.max(r.put, r.deleted)));
    g.clearRect(0, 0, width, height);
    g.fillStyle = "#667";
    g.font = "11px system-ui, sans-serif";
    g.fillText(`${top.toFixed(1)}/s`, 4, 12);
    g.fillText("0", 4, height - 4);
    for (const [key, color] of [["put", "#2e7d32"], ["deleted", "#b3261e"]]) {
      g.strokeStyle = color;
      g.lineWidth = 2;
      g.beginPath();
      rates.forEach((r, i) => {
        const x = 30 + (i * (width - 40)) / (SAMPLES - 1);
        const y = height - 8 - (r[key] / top) * (height - 24);
        if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
      });
      g.stroke();
    }
  }

  async function act(button) {
    if (!confirm(button.dataset.confirm)) return;
    const status = document.getElementById("status");
    const response = await fetch(button.dataset.action, { method: "POST", headers: { "x-ferrymq-dashboard": "1" } });
    const answer = await response.json().catch(() => ({}));
    status.textContent = answer.done || answer.msg || `Failed (${response.status})`;
    await poll();
  }

  for (const button of document.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", () => act(button));
  }
  if (target) {
    poll();
    setInterval(poll, POLL_MS);
  }
})();
