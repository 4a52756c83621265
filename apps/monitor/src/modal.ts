// One modal <dialog> for every form (confirm, declare, publish, peek): resolves with the form's data, or
// undefined when cancelled (Esc, Cancel). The forms themselves are in dialogs.ts.
import { h } from './dom.js';

export interface DialogOptions {
  title: string;
  body: (Node | string | null)[];
  /** The submit button; no submit button when absent (a read-only dialog). */
  confirm?: string;
  danger?: boolean;
  /** Runs on submit; a thrown error is shown in the dialog and keeps it open. */
  action?: (data: FormData) => Promise<Node | string | undefined> | Node | string | undefined;
}

export function openDialog(o: DialogOptions): Promise<FormData | undefined> {
  // One dialog at a time: a new one replaces the open one (its close handler removes it).
  document.querySelector<HTMLDialogElement>('dialog.modal[open]')?.close();
  const status = h('p', { class: 'dialog-status', role: 'status' });
  const submit =
    o.confirm === undefined
      ? null
      : h('button', { type: 'submit', class: o.danger ? 'danger' : 'primary', value: 'ok' }, o.confirm);
  const cancel = h(
    'button',
    { type: 'button', class: 'ghost', value: 'cancel' },
    o.confirm ? 'Cancel' : 'Close',
  );
  const form = h(
    'form',
    { method: 'dialog' },
    h('h3', null, o.title),
    ...o.body,
    status,
    h('div', { class: 'dialog-buttons' }, cancel, submit),
  );
  const dialog = h('dialog', { class: 'modal', 'aria-label': o.title }, form);
  document.body.append(dialog);
  return new Promise((resolve) => {
    let result: FormData | undefined;
    const done = () => {
      dialog.remove();
      resolve(result);
    };
    dialog.addEventListener('close', done, { once: true });
    cancel.addEventListener('click', () => dialog.close());
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const data = new FormData(form);
      if (o.action === undefined) {
        result = data;
        dialog.close();
        return;
      }
      if (submit) submit.disabled = true;
      status.className = 'dialog-status';
      status.textContent = 'Working…';
      try {
        const shown = await o.action(data);
        result = data;
        if (shown === undefined) dialog.close();
        else {
          status.replaceChildren(shown);
          status.className = 'dialog-status ok';
          if (submit) submit.disabled = false;
        }
      } catch (err) {
        status.textContent = (err as Error)?.message ?? String(err);
        status.className = 'dialog-status error';
        if (submit) submit.disabled = false;
      }
    });
    dialog.showModal();
    (form.querySelector('input,textarea,select') as HTMLElement | null)?.focus();
  });
}

export function field(label: string, input: HTMLElement): HTMLElement {
  return h('label', { class: 'field' }, h('span', null, label), input);
}
