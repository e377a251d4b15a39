// The model selector: every model as a card, and a field to add any Hugging Face repo.
import { useState } from "react";
import type { FormEvent } from "react";
import type { ModelsApi } from "../hooks/useModels";
import { messageOf } from "../api";
import { ModelCard } from "./ModelCard";
import type { CardActions } from "./ModelCard";

type Props = { models: ModelsApi; selectedModel: string; onSelect: (id: string) => void };

export function ModelList({ models, selectedModel, onSelect }: Props) {
  const actions: CardActions = {
    download: (id) => void models.download(id),
    retry: (id) => void models.retry(id),
    cancel: (id) => void models.cancel(id),
    remove: (id) => void models.remove(id),
    unload: (id) => void models.unload(id),
    select: onSelect,
  };
  return (
    <div className="models">
      {models.listError && (
        <p className="note note-error" role="alert">
          {models.listError}
        </p>
      )}
      <ul className="model-list" aria-label="Models">
        {models.models.map((model) => (
          <ModelCard
            key={model.id}
            model={model}
            selected={model.id === selectedModel}
            live={models.live[model.id]}
            note={models.notes[model.id]}
            actions={actions}
          />
        ))}
      </ul>
      <AddModel add={models.addCustom} />
    </div>
  );
}

function AddModel({ add }: { add: (id: string) => Promise<void> }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    try {
      await add(value.trim());
      setValue("");
      setError(null);
    } catch (e) {
      setError(messageOf(e));
    }
  };
  return (
    <form className="add-model" onSubmit={(e) => void submit(e)}>
      <label htmlFor="custom-model">Add a model from the Hugging Face Hub</label>
      <div className="inline">
        <input
          id="custom-model"
          type="text"
          placeholder="org/name, e.g. mlx-community/Llama-3.2-1B-Instruct-4bit"
          value={value}
          spellCheck={false}
          autoCapitalize="off"
          onChange={(e) => setValue(e.target.value)}
        />
        <button type="submit" disabled={!value.trim()}>
          Add
        </button>
      </div>
      {error && (
        <p className="note note-error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
