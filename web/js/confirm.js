// The deliberate second step of the one key, a level change and the switch-back: type the scope's name.
// One idempotency key per confirmation, kept until the server answers, so a double press or a retry
// after a network error repeats the same request instead of acting twice.
import { $, el, t, randomKey, notify } from "./core.js";

/**
 * Open the confirmation dialog.
 *  title, lines: what will happen; name: the text the operator must type exactly;
 *  action(key): performs the request with the key; resolves to close the dialog, throws to show an error.
 *  danger: style of the confirm button.
 */
export function confirmTyped({ title, lines, name, confirmLabel, action, onError }) {
  const dialog = $("#confirm-dialog");
  const form = $("#confirm-form");
  const input = $("#confirm-input");
  const ok = $("#confirm-ok");
  const error = $("#confirm-error");
  const key = randomKey();
  let busy = false;

  $("#confirm-title").textContent = title;
  $("#confirm-lines").replaceChildren(...lines.map((line) => el("li", {}, line)));
  $("#confirm-prompt").replaceChildren(t("typeToConfirm"), " ", el("b", { class: "must-type" }, name));
  input.value = "";
  input.setAttribute("aria-label", t("typeToConfirmLabel", { name }));
  ok.textContent = confirmLabel;
  // Not `disabled`: Enter on a wrong name must still reach the form and say why nothing happens.
  const ready = () => ok.setAttribute("aria-disabled", String(busy || !matches()));
  ok.disabled = false;
  error.textContent = "";
  error.replaceChildren();

  const matches = () => input.value.trim() === name;
  input.oninput = () => { ready(); error.textContent = ""; };
  form.onsubmit = async (event) => {
    event.preventDefault();
    if (busy) return; // a second Enter or click while the first is on its way does nothing
    if (!matches()) { error.textContent = t("typeMismatch", { name }); input.focus(); return; }
    busy = true; ready(); input.readOnly = true;
    ok.textContent = t("sending");
    try {
      await action(key);
      dialog.close("done");
    } catch (e) {
      // Same key on a retry: the server answers the first request's result if it got through.
      ok.textContent = e.status ? confirmLabel : t("retry");
      if (onError && onError(e, error)) { /* handled: e.g. the 409 link */ } else error.textContent = e.message;
      if (!e.status) notify(t("networkRetry"), "error");
    } finally {
      busy = false; input.readOnly = false; ready();
    }
  };
  $("#confirm-cancel").onclick = () => dialog.close("cancel");
  ready();
  dialog.showModal();
  input.focus();
  return dialog;
}
