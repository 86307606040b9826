/** Small pieces every view uses: times, health badges, secrets shown on request, confirmations, load states. */
import type { ComponentChildren } from 'preact';
import { useId, useRef, useState } from 'preact/hooks';
import { errorText } from './api.js';

/** `3 s ago`, `5 min ago`, `2 h ago`, `4 d ago`, with the exact time on hover and for screen readers' `time`. */
export function Age(props: { at: string | null; nowMs?: number }) {
  if (props.at === null) return <span class="muted">never</span>;
  const ms = (props.nowMs ?? Date.now()) - Date.parse(props.at);
  return (
    <time dateTime={props.at} title={new Date(props.at).toLocaleString()}>
      {ageText(ms)}
    </time>
  );
}

export function ageText(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} d ago`;
}

const TONES: Record<string, 'good' | 'warn' | 'bad' | 'neutral'> = {
  ok: 'good',
  started: 'good',
  available: 'good',
  primary: 'good',
  standby: 'good',
  serving: 'good',
  done: 'good',
  pending: 'warn',
  stale: 'warn',
  building: 'warn',
  deploying: 'warn',
  rejoining: 'warn',
  warning: 'warn',
  stopped: 'neutral',
  destroying: 'neutral',
  destroyed: 'neutral',
  resolved: 'neutral',
  info: 'neutral',
  error: 'bad',
  critical: 'bad',
  failed: 'bad',
  unreachable: 'bad',
  open: 'bad',
};

/** A state word with its colour; the word itself carries the meaning (never the colour alone). */
export function Badge(props: { value: string | null }) {
  const value = props.value ?? 'unknown';
  return <span class={`badge tone-${TONES[value] ?? 'neutral'}`}>{value}</span>;
}

/** A secret, hidden until the person asks to see it. */
export function Secret(props: { value: string; label: string }) {
  const [shown, setShown] = useState(false);
  return (
    <span class="secret">
      <code>{shown ? props.value : '••••••'}</code>{' '}
      <button type="button" class="small" aria-pressed={shown} onClick={() => setShown(!shown)}>
        {shown ? 'Hide' : 'Reveal'}
        <span class="visually-hidden"> {props.label}</span>
      </button>
    </span>
  );
}

/** An error as the master said it, announced to screen readers. */
export function Problem(props: { text: string | null }) {
  if (props.text === null) return null;
  return (
    <p class="error" role="alert">
      {props.text}
    </p>
  );
}

/** While the first answer is awaited; nothing once the load failed (its {@link Problem} says why). */
export function Loading(props: { what: string; error?: string | null }) {
  if (props.error !== undefined && props.error !== null) return null;
  return (
    <p class="muted" aria-busy="true">
      Loading {props.what}…
    </p>
  );
}

/**
 * A button that asks first: a modal `<dialog>` (the browser keeps the focus in it and Escape closes it) saying what
 * will happen, then runs `action` and shows its outcome.
 */
export function ConfirmButton(props: {
  label: string;
  title: string;
  children: ComponentChildren;
  confirmLabel: string;
  danger?: boolean;
  disabled?: boolean;
  action(): Promise<string>;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<{ ok: boolean; text: string } | null>(null);
  const run = async () => {
    setBusy(true);
    try {
      setOutcome({ ok: true, text: await props.action() });
    } catch (error) {
      setOutcome({ ok: false, text: errorText(error) });
    } finally {
      setBusy(false);
      dialog.current?.close();
    }
  };
  return (
    <span class="confirm">
      <button
        type="button"
        class={props.danger === true ? 'danger' : undefined}
        disabled={props.disabled === true || busy}
        onClick={() => {
          setOutcome(null);
          dialog.current?.showModal();
        }}
      >
        {busy ? `${props.label}…` : props.label}
      </button>
      <dialog ref={dialog} aria-labelledby={titleId}>
        <h2 id={titleId}>{props.title}</h2>
        {props.children}
        <div class="actions">
          <button type="button" onClick={() => dialog.current?.close()}>
            Cancel
          </button>
          <button
            type="button"
            class={props.danger === true ? 'danger' : 'primary'}
            disabled={busy}
            onClick={() => void run()}
          >
            {props.confirmLabel}
          </button>
        </div>
      </dialog>
      {outcome === null ? null : (
        <span class={outcome.ok ? 'outcome ok' : 'outcome error'} role={outcome.ok ? 'status' : 'alert'}>
          {outcome.text}
        </span>
      )}
    </span>
  );
}
