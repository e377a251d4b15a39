// Handy's settings layout: titled groups of rows, each row a label (with a one-line
// description) and its control, side by side or stacked.
import type { ReactNode } from "react";

export function SettingsGroup({ title, children, id }: { title: string; children: ReactNode; id?: string }) {
  const headingId = `${id ?? title.toLowerCase().replace(/\W+/g, "-")}-heading`;
  return (
    <section className="group" aria-labelledby={headingId} id={id}>
      <h2 id={headingId} className="group-title">
        {title}
      </h2>
      <div className="group-body">{children}</div>
    </section>
  );
}

export function SettingRow(props: {
  title: string;
  description?: string;
  htmlFor?: string;
  layout?: "horizontal" | "stacked";
  children: ReactNode;
}) {
  const { title, description, htmlFor, layout = "horizontal", children } = props;
  return (
    <div className={`row row-${layout}`}>
      <div className="row-label">
        <label htmlFor={htmlFor}>{title}</label>
        {description && <p className="row-description">{description}</p>}
      </div>
      <div className="row-control">{children}</div>
    </div>
  );
}
