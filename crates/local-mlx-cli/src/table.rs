//! Plain-text tables for people (scripts use `--json`).

use local_mlx::error::{escape_controls, human_bytes};
use local_mlx::{MlxModelInfo, MlxModelStatus, ModelState};

/// `models`: id, size, status, default marker.
pub fn models(models: &[MlxModelInfo]) -> String {
    let rows: Vec<[String; 4]> = models
        .iter()
        .map(|m| {
            [
                m.id.clone(),
                if m.size_bytes > 0 { human_bytes(m.size_bytes) } else { "?".into() },
                describe(&m.status),
                if m.is_default { "default".into() } else { String::new() },
            ]
        })
        .collect();
    render(["MODEL", "SIZE", "STATUS", ""], &rows)
}

/// `status`: one line per model.
pub fn statuses(statuses: &[MlxModelStatus]) -> String {
    let rows: Vec<[String; 2]> = statuses.iter().map(|s| [s.model_id.clone(), describe(s)]).collect();
    render(["MODEL", "STATUS"], &rows)
}

fn describe(status: &MlxModelStatus) -> String {
    let mut text = status.state.to_string();
    if status.state == ModelState::Downloading {
        if let Some(p) = status.progress {
            text = format!("downloading {:.0}%", p * 100.0);
        }
    }
    if status.state == ModelState::NotDownloaded && status.partial_bytes > 0 {
        text = format!("partial ({} kept)", human_bytes(status.partial_bytes));
    }
    // The last download error, or a corrupt cache entry and what to do about it.
    if let Some(error) = &status.error {
        text = format!("{text}: {}", escape_controls(error));
    }
    text
}

fn render<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}
