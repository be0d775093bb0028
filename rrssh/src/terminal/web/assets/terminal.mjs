// The page's side of the rrssh web terminal: xterm.js on one end, a WebSocket to the server
// on the other. Binary messages carry the terminal's bytes both ways; text messages carry
// JSON control: {"type":"resize","cols":C,"rows":R} from here, {"type":"exit","status":N}
// or {"type":"error","message":M} from the server.
import { Terminal } from "./xterm.mjs";
import { FitAddon } from "./addon-fit.mjs";

const status = document.getElementById("status");
const setStatus = (text, cls) => { status.textContent = text; status.className = cls || ""; };

const term = new Terminal({ cursorBlink: true, scrollback: 5000, fontFamily: "monospace" });
const fit = new FitAddon();
term.loadAddon(fit);
term.open(document.getElementById("terminal"));
fit.fit();
term.focus();
// For scripts and tests driving the page.
window.rrsshTerminal = term;

const params = new URLSearchParams(location.search);
const url = new URL("socket", location.href);
url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
url.search = new URLSearchParams({
  token: params.get("token") || "",
  cols: String(term.cols),
  rows: String(term.rows),
}).toString();
document.getElementById("title").textContent = document.title = params.get("title") || "rrssh terminal";

const socket = new WebSocket(url);
socket.binaryType = "arraybuffer";
const encoder = new TextEncoder();
let ended = false;

socket.onopen = () => setStatus("connected");
socket.onmessage = (ev) => {
  if (typeof ev.data === "string") {
    const msg = JSON.parse(ev.data);
    if (msg.type === "exit") { ended = true; setStatus(`exited with status ${msg.status}`, "ended"); }
    else if (msg.type === "error") { ended = true; setStatus(msg.message, "failed"); }
    else if (msg.type === "ready") setStatus("connected");
  } else {
    term.write(new Uint8Array(ev.data));
  }
};
socket.onclose = (ev) => {
  if (!ended) setStatus(ev.reason ? `closed: ${ev.reason}` : "connection closed", "failed");
};
term.onData((data) => { if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data)); });
term.onBinary((data) => {
  if (socket.readyState !== WebSocket.OPEN) return;
  const bytes = Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff);
  socket.send(bytes);
});
term.onResize(({ cols, rows }) => {
  if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "resize", cols, rows }));
});
new ResizeObserver(() => fit.fit()).observe(document.getElementById("terminal"));
