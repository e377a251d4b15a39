// The settings page's states and buttons, against Tauri's IPC mock.
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, test } from "vitest";
import App from "../src/App";
import type { MlxCommandError } from "../src/bindings";
import { FakeBackend, emitModelEvent, model } from "./fakeBackend";

function card(name: string) {
  return within(screen.getByRole("listitem", { name }));
}

async function renderPage(backend: FakeBackend) {
  backend.install();
  render(<App />);
  await screen.findByRole("list", { name: "Models" });
  await waitFor(() => expect(screen.getAllByTestId("status-badge").length).toBe(backend.models.length));
}

describe("model list", () => {
  test("shows name, size, description, RAM hint and a badge for each of the provider's states", async () => {
    const backend = new FakeBackend([
      model("org/a", "not_downloaded", { is_default: true }),
      model("org/b", "downloading"),
      model("org/c", "downloaded"),
      model("org/d", "loading"),
      model("org/e", "ready"),
      model("me/custom", "not_downloaded", { size_bytes: 0, ram_bytes: 0, is_builtin: false }),
    ]);
    await renderPage(backend);
    const badges = screen.getAllByTestId("status-badge").map((b) => b.textContent);
    expect(badges).toEqual(["Not downloaded", "Downloading", "Downloaded", "Loading", "Ready", "Not downloaded"]);
    expect(card("a").getByText("The org/a model.")).toBeInTheDocument();
    expect(card("a").getByText(/940 MB download · needs about 2.0 GB of memory/)).toBeInTheDocument();
    expect(card("a").getByText("Recommended")).toBeInTheDocument();
    expect(card("custom").getByText(/size unknown/)).toBeInTheDocument();
  });

  test("offers the buttons that make sense in each state", async () => {
    const backend = new FakeBackend([
      model("org/a", "not_downloaded"),
      model("org/b", "downloading"),
      model("org/c", "downloaded"),
      model("org/d", "loading"),
      model("org/e", "ready"),
    ]);
    await renderPage(backend);
    const names = (n: string) => card(n).getAllByRole("button").map((b) => b.textContent);
    // While org/b downloads, Download elsewhere waits, with the core's reason.
    expect(names("a")).toEqual(["Download"]);
    expect(card("a").getByRole("button", { name: "Download" })).toBeDisabled();
    expect(card("a").getByRole("button", { name: "Download" })).toHaveAttribute("title", expect.stringContaining("'org/b' is already downloading"));
    expect(names("b")).toEqual(["Cancel", "Delete"]);
    expect(names("c")).toEqual(["Select", "Delete"]);
    expect(names("d")).toEqual(["Delete"]);
    expect(card("d").getByRole("button", { name: "Delete" })).toHaveAttribute("aria-disabled", "true");
    expect(names("e")).toEqual(["Select", "Unload", "Delete"]);
  });

  test("a busy Delete looks disabled with the reason on hover, and the core's refusal is shown", async () => {
    const backend = new FakeBackend([model("org/b", "downloading")]);
    backend.handlers.mlx_delete_model = () => {
      throw {
        kind: "busy",
        message: "model 'org/b' is downloading: wait for it to finish or cancel it before deleting it",
      } satisfies MlxCommandError;
    };
    await renderPage(backend);
    const del = card("b").getByRole("button", { name: "Delete" });
    expect(del).toHaveAttribute("aria-disabled", "true");
    expect(del).toHaveAccessibleDescription("model 'org/b' is downloading: deleting it is not possible now");
    await userEvent.click(del);
    expect(await card("b").findByRole("alert")).toHaveTextContent("model 'org/b' is downloading");
    expect(backend.called("mlx_delete_model")).toEqual([{ cmd: "mlx_delete_model", args: { modelId: "org/b" } }]);
  });

  test("Delete of a downloaded model returns it to Not downloaded", async () => {
    const backend = new FakeBackend([model("org/c", "downloaded")]);
    backend.handlers.mlx_delete_model = () => {
      backend.setState("org/c", "not_downloaded");
      return null;
    };
    await renderPage(backend);
    await userEvent.click(card("c").getByRole("button", { name: "Delete" }));
    await waitFor(() => expect(card("c").getByTestId("status-badge")).toHaveTextContent("Not downloaded"));
    expect(card("c").getByText("Deleted.")).toBeInTheDocument();
  });

  test("adding a custom model shows the core's validation message", async () => {
    const backend = new FakeBackend([model("org/a", "downloaded")]);
    backend.handlers.mlx_add_custom_model = (args) => {
      throw { kind: "invalid_repo_id", message: `'${args.modelId}' is not a valid Hugging Face repo id` } satisfies MlxCommandError;
    };
    await renderPage(backend);
    await userEvent.type(screen.getByLabelText("Add a model from the Hugging Face Hub"), "not a repo");
    await userEvent.click(screen.getByRole("button", { name: "Add" }));
    expect(await screen.findByText("'not a repo' is not a valid Hugging Face repo id")).toBeInTheDocument();
  });
});

describe("downloads", () => {
  test("progress events move the bar, with percent, bytes, speed and time left", async () => {
    const backend = new FakeBackend([model("org/a", "not_downloaded")]);
    let finish: (value: unknown) => void = () => {};
    backend.handlers.mlx_download_model = () => {
      backend.setState("org/a", "downloading");
      return new Promise((resolve) => (finish = resolve));
    };
    await renderPage(backend);
    await userEvent.click(card("a").getByRole("button", { name: "Download" }));
    await emitModelEvent({ event_type: "download_started", model_id: "org/a" });
    await emitModelEvent({
      event_type: "download_progress",
      model_id: "org/a",
      progress: 0.42,
      downloaded_bytes: 420_000_000,
      total_bytes: 1_000_000_000,
      bytes_per_second: 5_800_000,
    });
    const progress = await card("a").findByTestId("download-progress");
    await waitFor(() => expect(progress).toHaveTextContent("42% · 420 MB of 1.0 GB · 5.8 MB/s · 1 min 40 s left"));
    expect(within(progress).getByRole("progressbar")).toHaveAttribute("value", "42");

    backend.setState("org/a", "downloaded");
    await emitModelEvent({ event_type: "download_completed", model_id: "org/a" });
    finish({ outcome: "downloaded", snapshot: "/cache/snap", fetched_bytes: 1_000_000_000 });
    await waitFor(() => expect(card("a").getByTestId("status-badge")).toHaveTextContent("Downloaded"));
    expect(card("a").queryByTestId("download-progress")).not.toBeInTheDocument();
  });

  test("Cancel stops the download and says Download resumes from the kept bytes", async () => {
    const backend = new FakeBackend([model("org/a", "not_downloaded")]);
    let finish: (value: unknown) => void = () => {};
    backend.handlers.mlx_download_model = () => {
      backend.setState("org/a", "downloading");
      return new Promise((resolve) => (finish = resolve));
    };
    backend.handlers.mlx_cancel_download = () => {
      backend.setState("org/a", "not_downloaded", { partial_bytes: 12_000_000 });
      finish({ outcome: "cancelled", partial_bytes: 12_000_000 });
      return "org/a";
    };
    await renderPage(backend);
    await userEvent.click(card("a").getByRole("button", { name: "Download" }));
    await emitModelEvent({ event_type: "download_started", model_id: "org/a" });
    await userEvent.click(await card("a").findByRole("button", { name: "Cancel" }));
    expect(await card("a").findByText("Download cancelled. 12 MB are kept: Download resumes from there.")).toBeInTheDocument();
    expect(card("a").getByRole("button", { name: "Download" })).toBeEnabled();
  });

  test("a failure shows the error and Retry, which calls mlx_retry_download", async () => {
    const backend = new FakeBackend([model("org/a", "not_downloaded")]);
    const message = "download of 'org/a' failed after 3 attempts: network error";
    backend.handlers.mlx_download_model = () => {
      // The core offers the retry, and says with how many attempts.
      backend.setState("org/a", "not_downloaded", { error: message, retry_attempts: 4 });
      throw { kind: "download_failed", message } satisfies MlxCommandError;
    };
    backend.handlers.mlx_retry_download = () => {
      backend.setState("org/a", "downloaded", { error: undefined, retry_attempts: undefined });
      return { outcome: "downloaded", snapshot: "/s", fetched_bytes: 1 };
    };
    await renderPage(backend);
    await userEvent.click(card("a").getByRole("button", { name: "Download" }));
    expect(await card("a").findByRole("alert")).toHaveTextContent(message);
    await userEvent.click(card("a").getByRole("button", { name: "Retry (up to 4 attempts)" }));
    await waitFor(() => expect(card("a").getByTestId("status-badge")).toHaveTextContent("Downloaded"));
    expect(backend.called("mlx_retry_download")).toHaveLength(1);
  });

  test("shows the core's warning before a download that would not fit on the disk", async () => {
    const warning = "not enough disk space in /hub: the download needs 940000000 more bytes (940.00 MB), only 500000000 (500.00 MB) are free";
    const disk_warning = { kind: "insufficient_disk", message: warning } as const;
    const tight = { status: { ...model("org/a", "not_downloaded").status, bytes_needed: 940_000_000, bytes_free: 500_000_000, disk_warning } };
    const backend = new FakeBackend([model("org/a", "not_downloaded", tight), model("org/small", "not_downloaded", { size_bytes: 1000 })]);
    await renderPage(backend);
    expect(await card("a").findByText(warning)).toHaveAttribute("data-kind", "insufficient_disk");
    // The user's to fix, not a wait: Download stays enabled and the core decides on the click.
    expect(card("a").getByRole("button", { name: "Download" })).toBeEnabled();
    expect(card("small").queryByText(/not enough disk space/)).not.toBeInTheDocument();
  });
});

describe("loading and pre-warm", () => {
  test("visiting the page pre-warms the selected downloaded model", async () => {
    const backend = new FakeBackend([model("org/selected", "downloaded")]);
    await renderPage(backend);
    await waitFor(() => expect(backend.called("mlx_warm_up")).toHaveLength(1));
  });

  test("shows each loading phase until the model is ready", async () => {
    const backend = new FakeBackend([model("org/selected", "loading")]);
    await renderPage(backend);
    await emitModelEvent({ event_type: "loading_started", model_id: "org/selected", phase: "syncing_environment" });
    expect(await screen.findByTestId("loading-banner")).toHaveTextContent("Setting up the Python environment");
    await emitModelEvent({ event_type: "loading_started", model_id: "org/selected", phase: "starting_server" });
    expect(await screen.findByText(/Starting the MLX server/)).toBeInTheDocument();
    await emitModelEvent({ event_type: "loading_started", model_id: "org/selected", phase: "loading_model" });
    expect(await screen.findByText(/Loading the model into memory/)).toBeInTheDocument();
    backend.setState("org/selected", "ready");
    await emitModelEvent({ event_type: "loading_completed", model_id: "org/selected" });
    await waitFor(() => expect(screen.queryByTestId("loading-banner")).not.toBeInTheDocument());
    expect(card("selected").getByTestId("status-badge")).toHaveTextContent("Ready");
  });

  test("a failed warm-up says why and offers to try again", async () => {
    const backend = new FakeBackend([model("org/selected", "downloaded")]);
    backend.handlers.mlx_warm_up = () => {
      throw { kind: "uv_not_found", message: "uv, which runs the Python sidecar, was not found" } satisfies MlxCommandError;
    };
    await renderPage(backend);
    expect(await screen.findByText(/uv, which runs the Python sidecar, was not found/)).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Try again" }));
    await waitFor(() => expect(backend.called("mlx_warm_up")).toHaveLength(2));
  });
});

describe("settings", () => {
  test("post-processing off hides the provider's settings; the provider is Local (MLX) only", async () => {
    const backend = new FakeBackend([model("org/a", "downloaded")]);
    await renderPage(backend);
    const provider = screen.getByLabelText("Provider");
    expect(within(provider).getAllByRole("option").map((o) => o.textContent)).toEqual(["Local (MLX)"]);
    await userEvent.click(screen.getByRole("switch", { name: "Enable post-processing" }));
    expect(await screen.findByText(/Post-processing is off/)).toBeInTheDocument();
    expect(screen.queryByRole("list", { name: "Models" })).not.toBeInTheDocument();
    expect(backend.called("set_post_process_enabled")).toEqual([{ cmd: "set_post_process_enabled", args: { enabled: false } }]);
  });

  test("Select, the unload timeout and the prompt are saved through mlx_update_settings", async () => {
    const backend = new FakeBackend([model("org/selected", "ready"), model("org/other", "downloaded")]);
    await renderPage(backend);
    await userEvent.click(card("other").getByRole("button", { name: "Select" }));
    await waitFor(() => expect(backend.settings.selected_model).toBe("org/other"));
    expect(await card("other").findByText("Selected")).toBeInTheDocument();

    const timeout = screen.getByLabelText("Unload model");
    expect(within(timeout).getAllByRole("option").map((o) => o.textContent)).toEqual([
      "Never",
      "Immediately",
      "After 2 minutes",
      "After 5 minutes",
      "After 10 minutes",
      "After 15 minutes",
      "After 1 hour",
      "After 15 seconds (debug)",
    ]);
    await userEvent.selectOptions(timeout, "hour1");
    await waitFor(() => expect(backend.settings.model_unload_timeout).toBe("hour1"));

    const deadline = screen.getByLabelText("Answer within");
    expect(deadline).toHaveValue("15");
    await userEvent.selectOptions(deadline, "never");
    await waitFor(() => expect(backend.settings.answer_within_seconds).toBeNull());
    await userEvent.selectOptions(deadline, "30");
    await waitFor(() => expect(backend.settings.answer_within_seconds).toBe(30));

    const prompt = screen.getByLabelText("Prompt template");
    await userEvent.clear(prompt);
    await userEvent.type(prompt, "Fix it: ${{output}");
    await userEvent.click(screen.getByRole("button", { name: "Save prompt" }));
    await waitFor(() => expect(backend.settings.prompt).toBe("Fix it: ${output}"));
    expect(screen.getByText("Saved.")).toBeInTheDocument();
  });

  test("a prompt the core refuses is not saved and the core's reason is shown", async () => {
    const backend = new FakeBackend([model("org/selected", "ready")]);
    const message = "the prompt template cannot be used: it is empty; write a prompt that contains ${output}";
    backend.handlers.mlx_update_settings = () => {
      throw { kind: "invalid_prompt", message } satisfies MlxCommandError;
    };
    await renderPage(backend);
    const prompt = screen.getByLabelText("Prompt template");
    await userEvent.clear(prompt);
    // The page does not judge the prompt: Save asks the core, which decides.
    await userEvent.click(screen.getByRole("button", { name: "Save prompt" }));
    expect(await screen.findByText(message)).toBeInTheDocument();
    expect(backend.settings.prompt).toBe("Clean up: ${output}");
    expect(screen.queryByText("Saved.")).not.toBeInTheDocument();
  });
});

describe("Try it", () => {
  test("shows the enhanced text with its time, tokens and the clean-up check's warnings", async () => {
    const backend = new FakeBackend([model("org/selected", "ready")]);
    backend.handlers.mlx_process_text_detailed = (args) => ({
      text: `Cleaned: ${args.text}`,
      clean_up: {
        kept_original: "cut_off",
        warnings: ["the answer was cut off by the token limit; the original transcript is kept"],
      },
      model_id: "org/selected",
      tokens_generated: 17,
      prompt_tokens: 40,
      cached_tokens: 0,
      timings: { start_ms: 0, load_ms: 800, generate_ms: 400, total_ms: 1250 },
    });
    await renderPage(backend);
    const transcript = screen.getByLabelText("Transcript");
    await userEvent.clear(transcript);
    await userEvent.type(transcript, "um hello");
    await userEvent.click(screen.getByRole("button", { name: "Enhance" }));
    const result = await screen.findByTestId("try-result");
    expect(result).toHaveTextContent("Cleaned: um hello");
    expect(within(result).getByTestId("try-meta")).toHaveTextContent(
      "Kept the original by org/selected in 1.3 s (load 800 ms) · 17 tokens generated · 40 prompt tokens",
    );
    expect(within(result).getByText(/cut off by the token limit/)).toBeInTheDocument();
  });

  test("an error from the core is shown, and Enhance waits for a downloaded model", async () => {
    const backend = new FakeBackend([model("org/selected", "downloaded")]);
    backend.handlers.mlx_process_text_detailed = () => {
      throw { kind: "sidecar_timeout", message: "the sidecar did not answer generate within 120 s." } satisfies MlxCommandError;
    };
    await renderPage(backend);
    await userEvent.click(screen.getByRole("button", { name: "Enhance" }));
    expect(await screen.findByText("the sidecar did not answer generate within 120 s.")).toBeInTheDocument();

    backend.setState("org/selected", "not_downloaded");
    await emitModelEvent({ event_type: "unloaded", model_id: "org/selected" });
    await waitFor(() => expect(screen.getByRole("button", { name: "Enhance" })).toBeDisabled());
    expect(screen.getByText("Download and select a model first.")).toBeInTheDocument();
  });
});
