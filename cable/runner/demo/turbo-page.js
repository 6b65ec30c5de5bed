// Shows whether the page's <turbo-cable-stream-source> is subscribed:
// turbo-rails sets its "connected" attribute when the server confirms the
// subscription, and never sets it when the server rejects the name.
const source = document.querySelector("turbo-cable-stream-source");
const badge = document.getElementById("subscription");

function update() {
  const on = source?.hasAttribute("connected");
  badge.dataset.state = on ? "connected" : "waiting";
  badge.textContent = on ? "subscribed" : "not subscribed";
}

if (source) {
  new MutationObserver(update).observe(source, { attributes: true, attributeFilter: ["connected"] });
}
update();
