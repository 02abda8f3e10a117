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
      if (fresh.quota !== undefined) document.getElementById("quota").innerHTML = fresh.quota;
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
    // Drawn at the canvas's displayed size (and the screen's pixel ratio), so text stays crisp.
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    const g = canvas.getContext("2d");
    g.scale(ratio, ratio);
    const top = Math.max(1, ...rates.map((r) => Math.max(r.put, r.deleted)));
    const left = 48;
    const y = (value) => height - 10 - (value / top) * (height - 24);
    g.font = "11px system-ui, sans-serif";
    g.textAlign = "right";
    for (const value of [0, top / 2, top]) { // grid lines, labelled in messages per second
      g.fillStyle = "#667";
      g.fillText(`${+value.toFixed(value < 10 ? 1 : 0)}/s`, left - 6, y(value) + 4);
      g.fillStyle = "#e3e6ea";
      g.fillRect(left, Math.round(y(value)), width - left - 4, 1);
    }
    const step = (width - left - 4) / (SAMPLES - 1);
    for (const [key, color] of [["put", "#2e7d32"], ["deleted", "#b3261e"]]) {
      g.strokeStyle = color;
      g.lineWidth = 2;
      g.beginPath();
      rates.forEach((r, i) => { // the newest sample at the right edge
        const x = left + (SAMPLES - rates.length + i) * step;
        if (i === 0) g.moveTo(x, y(r[key])); else g.lineTo(x, y(r[key]));
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
