/**
 * A tree's service logs, as `hox logs TREE -f` reads them: the last lines of each log first, then, while
 * following, what each log gained since (its offset from the previous answer), every few seconds. The nodes
 * keep the logs; the master asks them (readTreeLogs waits for their answer, bounded).
 */
import { useEffect, useState } from 'preact/hooks';
import { errorText } from '../api.js';
import { useLive } from '../live.js';
import { Problem } from '../ui.js';

const FOLLOW_EVERY_MS = 3000;
/** Lines kept on screen per log. */
const KEEP_LINES = 300;

interface LogState {
  key: string;
  label: string;
  lines: string[];
}

export function LogTail(props: { title: string }) {
  const { session } = useLive();
  const [follow, setFollow] = useState(true);
  const [logs, setLogs] = useState<LogState[]>([]);
  const [problems, setProblems] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const known = new Map<string, { instance_guid: string; service: string; offset: number }>();
    const read = async () => {
      try {
        const answer = await session.api.call(
          'readTreeLogs',
          known.size === 0
            ? { title: props.title, lines: 50, wait_ms: 5000 }
            : { title: props.title, wait_ms: 5000, offset_list: [...known.values()] },
          { signal: abort.signal },
        );
        setError(null);
        setProblems(answer.problem_list.map((p) => `${p.computer_guid}: ${p.message}`));
        setLogs((current) => {
          const next = new Map(current.map((l) => [l.key, l]));
          for (const log of answer.log_list) {
            const key = `${log.instance_guid}/${log.service}`;
            known.set(key, { instance_guid: log.instance_guid, service: log.service, offset: log.offset });
            const old = next.get(key);
            const lines = [...(old?.lines ?? []), ...log.lines].slice(-KEEP_LINES);
            next.set(key, { key, label: `${log.instance_title} · ${log.service}`, lines });
          }
          return [...next.values()].sort((a, b) => a.label.localeCompare(b.label));
        });
      } catch (e) {
        if (abort.signal.aborted) return;
        setError(errorText(e));
      }
      if (follow && !abort.signal.aborted) timer = setTimeout(() => void read(), FOLLOW_EVERY_MS);
    };
    void read();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [session, props.title, follow]);

  return (
    <div class="logs">
      <label class="inline">
        <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} /> Follow (new
        lines every {FOLLOW_EVERY_MS / 1000} s)
      </label>
      <Problem text={error} />
      {problems.map((p) => (
        <p key={p} class="muted">
          {p}
        </p>
      ))}
      {logs.length === 0 ? <p class="muted">No log lines yet.</p> : null}
      {logs.map((log) => (
        <details key={log.key} open>
          <summary>{log.label}</summary>
          <pre tabIndex={0} aria-label={`log of ${log.label}`}>
            {log.lines.join('\n')}
          </pre>
        </details>
      ))}
    </div>
  );
}
