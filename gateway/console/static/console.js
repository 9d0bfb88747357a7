// Live tail: new transfer-log entries arrive as server-sent events and are appended as rows.
// Rows are built with textContent only, so nothing from the log is ever parsed as HTML.
"use strict";

(function () {
  const table = document.getElementById("tail");
  if (!table) {
    return;
  }
  const labels = JSON.parse(document.getElementById("labels").textContent);
  const state = document.getElementById("stream-state");
  const body = table.tBodies[0];
  const maxRows = 500;

  function beijing(iso) {
    const d = new Date(iso);
    const bj = new Date(d.getTime() + 8 * 3600 * 1000);
    return bj.toISOString().slice(0, 19).replace("T", " ");
  }

  function cell(row, text, className) {
    const td = row.insertCell();
    td.textContent = text;
    if (className) {
      td.className = className;
    }
    return td;
  }

  function append(entry) {
    const row = body.insertRow();
    row.dataset.seq = String(entry.seq);
    row.dataset.kind = entry.kind;
    row.className = "new";
    cell(row, String(entry.seq));
    cell(row, beijing(entry.at));
    cell(row, labels.events[entry.kind] || entry.kind);
    cell(row, labels.directions[entry.direction] || entry.direction);
    cell(row, entry.peer);
    cell(row, labels.record_types[entry.record_type] || entry.record_type);
    const id = row.insertCell();
    if (entry.message_id && (entry.direction === "outbound" || entry.direction === "inbound")) {
      const a = document.createElement("a");
      a.className = "mono";
      a.href = "/transfers/" + entry.direction + "/" + encodeURIComponent(entry.message_id);
      a.textContent = entry.message_id;
      id.appendChild(a);
    } else {
      id.textContent = entry.message_id;
    }
    const detail = Object.keys(entry.detail).sort()
      .filter((k) => entry.detail[k] !== "" && entry.detail[k] !== null)
      .map((k) => k + "=" + (typeof entry.detail[k] === "object" ? JSON.stringify(entry.detail[k]) : entry.detail[k]))
      .join(" ");
    cell(row, detail, "small");
    while (body.rows.length > maxRows) {
      body.deleteRow(0);
    }
    row.scrollIntoView({ block: "nearest" });
  }

  const source = new EventSource("/api/events/stream?after=" + encodeURIComponent(table.dataset.lastSeq));
  source.addEventListener("open", () => {
    state.textContent = "已连接";
    state.dataset.state = "open";
  });
  source.addEventListener("error", () => {
    state.textContent = "重新连接中";
    state.dataset.state = "reconnecting";
  });
  source.addEventListener("entry", (event) => {
    append(JSON.parse(event.data));
  });
})();
