/* A request's page (console/request.html): ask the portal for the request's staffing every few seconds while
   the page is open and shown; update the counts and the state in place, and offer a reload when anyone's status
   changed (the call list with its forms is never rewritten under the clerk's hands). Without JavaScript the page
   is the same, only not live. */
"use strict";

(() => {
  const box = document.getElementById("live-staffing");
  if (!box) return;
  const every = Math.max(1, Number(box.dataset.interval) || 10) * 1000;
  const confirmed = document.getElementById("live-confirmed");
  const pending = document.getElementById("live-pending");
  const update = document.getElementById("live-update");
  const note = document.getElementById("live-note");
  const status = document.getElementById("request-status");

  function say(text) {
    note.textContent = text;
    note.hidden = !text;
  }

  async function poll() {
    if (document.hidden) return schedule();
    let answer;
    try {
      answer = await fetch(box.dataset.url, {headers: {accept: "application/json"}, credentials: "same-origin",
                                             cache: "no-store", redirect: "manual"});
    } catch (error) {
      say("网络连接中断，稍后自动重试。");
      return schedule();
    }
    if (answer.type === "opaqueredirect" || answer.status === 401 || answer.status === 403) {
      say("登录已过期，请刷新页面并重新登录。");  // stop asking: the session is gone
      return;
    }
    const body = await answer.json().catch(() => ({}));
    if (!answer.ok) {
      say(`${body.title || "服务暂不可用"}，稍后自动重试。`);
      return schedule();
    }
    say("");
    confirmed.textContent = body.confirmed;
    pending.textContent = body.pending;
    if (status) {
      status.textContent = body.status_label;
      status.dataset.status = body.status;
    }
    if (body.version !== box.dataset.version) update.hidden = false;
    schedule();
  }

  function schedule() {
    setTimeout(poll, every);
  }

  schedule();
})();
