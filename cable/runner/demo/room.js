// The demo chat room: the official @rails/actioncable client (bundled from
// npm into /demo/static/) subscribed to DemoRoomChannel. Broadcasts are
// {type: "join"|"leave", user, online} and {type: "message", user, message}.
import { createConsumer } from "./static/actioncable.esm.js";

const room = document.body.dataset.room;
const $ = (id) => document.getElementById(id);

function setStatus(state, text) {
  const el = $("status");
  el.dataset.state = state;
  el.textContent = text;
}

function setOnline(n) {
  const el = $("online");
  el.dataset.count = String(n);
  el.textContent = `${n} online`;
}

// add appends a line; text only, never HTML.
function add(kind, parts) {
  const li = document.createElement("li");
  li.className = kind;
  for (const [tag, text] of parts) {
    const span = document.createElement(tag);
    span.textContent = text;
    li.append(span);
  }
  const list = $("messages");
  list.append(li);
  list.scrollTop = list.scrollHeight;
}

function join(user) {
  const consumer = createConsumer(); // URL from <meta name="action-cable-url">
  setStatus("connecting", "connecting…");
  const subscription = consumer.subscriptions.create(
    { channel: "DemoRoomChannel", room, user },
    {
      connected() {
        setStatus("connected", "connected");
      },
      disconnected() {
        setStatus("disconnected", "disconnected, retrying…");
      },
      rejected() {
        setStatus("rejected", "the server refused this room or name");
      },
      received(data) {
        switch (data.type) {
          case "join":
            setOnline(data.online);
            add("notice join", [["strong", data.user], ["span", " joined"]]);
            break;
          case "leave":
            setOnline(data.online);
            add("notice leave", [["strong", data.user], ["span", " left"]]);
            break;
          case "message":
            add(data.user === user ? "message mine" : "message", [
              ["strong", data.user],
              ["span", data.message],
            ]);
            break;
        }
      },
    },
  );

  $("send-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("message");
    const message = input.value.trim();
    if (message === "") return;
    subscription.perform("speak", { message });
    input.value = "";
    input.focus();
  });
}

$("join-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const user = $("username").value.trim();
  if (user === "") return;
  $("join-form").hidden = true;
  $("chat").hidden = false;
  $("me").textContent = user;
  $("message").focus();
  join(user);
});
