/* The /verify page: read a receipt (pasted or uploaded), run ReceiptVerifier in the browser, show each check. */
"use strict";

(() => {
  const LABELS = {
    alg: "算法版本",
    snapshot_hash: "人员库快照哈希",
    buckets: "人员库分桶内容",
    params_hash: "抽选参数哈希",
    bureau_commitment: "司法局随机数与其事先承诺一致",
    procuratorate_commitment: "检察院随机数与其事先承诺一致",
    beacon: "公共随机信标",
    seed: "随机种子",
    order: "抽选顺序（应联系人员与候补人员）",
    receipt_hash: "凭证哈希",
    contact_log_chain: "联络记录哈希链",
    contacts_follow_order: "联络记录按抽选顺序进行且附有证据",
    well_formed: "凭证格式完整",
    chain_link: "与上一份凭证相连",
  };
  const form = document.getElementById("verify-form");
  const text = document.getElementById("receipt-text");
  const file = document.getElementById("receipt-file");
  const previousFile = document.getElementById("previous-file");
  const verdict = document.getElementById("verdict");
  const list = document.getElementById("checks");

  const readFile = (input) => (input.files && input.files[0] ? input.files[0].text() : Promise.resolve(null));

  function show(ok, message) {
    verdict.hidden = false;
    verdict.dataset.ok = String(ok);
    verdict.className = "verdict " + (ok ? "verdict-pass" : "verdict-fail");
    verdict.textContent = message;
  }
  function render(result) {
    list.replaceChildren();
    for (const [name, c] of Object.entries(result.checks)) {
      const li = document.createElement("li");
      li.dataset.check = name;
      li.dataset.ok = String(c.ok);
      li.className = c.ok ? "check-pass" : "check-fail";
      const mark = document.createElement("span");
      mark.className = "mark";
      mark.setAttribute("aria-hidden", "true");
      mark.textContent = c.ok ? "✓" : "✗";
      const line = document.createElement("span");
      line.className = "line";
      line.textContent = `${LABELS[name] || name}：${c.ok ? "通过" : "未通过"}`;
      li.append(mark, line);
      if (c.detail) {
        const detail = document.createElement("span");
        detail.className = "detail";
        detail.textContent = c.detail;
        li.append(detail);
      }
      list.append(li);
    }
    const failed = Object.entries(result.checks).filter(([, c]) => !c.ok).map(([n]) => LABELS[n] || n);
    show(result.ok, result.ok ? "核验通过：每一项检查都通过，这份凭证与其记载的抽选过程一致。"
      : `核验未通过：${failed.join("、")}。这份凭证不可信。`);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    list.replaceChildren();
    verdict.hidden = true;
    if (!window.crypto || !window.crypto.subtle) {
      show(false, "无法核验：此浏览器在当前连接下不提供 WebCrypto（请使用 HTTPS 访问）。");
      return;
    }
    const source = (await readFile(file)) ?? text.value;
    if (!source.trim()) {
      show(false, "请粘贴凭证内容或选择凭证文件。");
      return;
    }
    let receipt, previous = null;
    try {
      receipt = ReceiptVerifier.parseJSON(source);
      const previousText = await readFile(previousFile);
      if (previousText !== null) previous = ReceiptVerifier.parseJSON(previousText);
    } catch (exc) {
      show(false, `无法读取凭证：不是有效的 JSON（${exc.message}）。`);
      return;
    }
    verdict.hidden = false;
    verdict.dataset.ok = "";
    verdict.className = "verdict";
    verdict.textContent = "正在浏览器中重新计算……";
    try {
      const result = await ReceiptVerifier.verifyReceipt(receipt);
      if (previous !== null) {
        result.checks.chain_link = ReceiptVerifier.chainLink(receipt, previous);
        result.ok = result.ok && result.checks.chain_link.ok;
      }
      render(result);
    } catch (exc) {
      show(false, `核验未通过：凭证内容无法处理（${exc.kind || exc.name}: ${exc.message}）。`);
    }
  });
  if (form.dataset.autoverify === "true") form.requestSubmit();  // a receipt fetched by draw id
  form.addEventListener("reset", () => {
    list.replaceChildren();
    verdict.hidden = true;
  });
})();
