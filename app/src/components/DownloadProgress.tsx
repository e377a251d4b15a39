// A download's progress bar with percent, bytes, speed and time left.
import type { LiveProgress } from "../hooks/useModels";
import { formatBytes, formatDuration, formatSpeed, timeLeft } from "../format";

export function DownloadProgress({ name, live }: { name: string; live: LiveProgress }) {
  const percent = Math.floor(live.progress * 100);
  const left = formatDuration(timeLeft(live.downloaded, live.total, live.speed));
  const parts = [
    `${percent}%`,
    live.total > 0 ? `${formatBytes(live.downloaded)} of ${formatBytes(live.total)}` : "starting…",
    live.speed > 0 ? formatSpeed(live.speed) : null,
    left ? `${left} left` : null,
  ].filter(Boolean);
  return (
    <div className="progress" data-testid="download-progress">
      <progress max={100} value={percent} aria-label={`Downloading ${name}`} />
      <p className="progress-text" aria-live="polite">
        {parts.join(" · ")}
      </p>
    </div>
  );
}
