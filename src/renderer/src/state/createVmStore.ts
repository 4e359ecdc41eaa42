import { create } from 'zustand';
import type { AppError } from '../../../shared/errors';
import type { CreateVmChoices, CreateVmDraft } from './createVmDraft';
import { emptyDraft } from './createVmDraft';

/**
 * The create-VM form: what was typed (kept while the form is closed and after a failed create), each host's
 * choices and limits as last loaded, and how the last submit went.
 */
export interface CreateVmState {
  open: boolean;
  draft: CreateVmDraft;
  /** Per host id: its `daemon.info`, images and VM names, loaded when the form opens or the host is picked. */
  choices: Record<string, CreateVmChoices>;
  loading: boolean;
  /** Why the chosen host's choices could not be loaded. */
  loadError: AppError | null;
  /** Field errors are shown once a field was changed, and all of them after a submit. */
  touched: Partial<Record<keyof CreateVmDraft, true>>;
  submitted: boolean;
  submitting: boolean;
  /** The daemon's answer to the last submit, when it refused. */
  error: AppError | null;
  setOpen(open: boolean): void;
  edit(patch: Partial<CreateVmDraft>): void;
}

export const useCreateVmStore = create<CreateVmState>()((set) => ({
  open: false,
  draft: emptyDraft(''),
  choices: {},
  loading: false,
  loadError: null,
  touched: {},
  submitted: false,
  submitting: false,
  error: null,
  setOpen: (open) => set({ open }),
  edit: (patch) =>
    set((s) => {
      const touched = { ...s.touched };
      for (const key of Object.keys(patch) as (keyof CreateVmDraft)[]) touched[key] = true;
      return { draft: { ...s.draft, ...patch }, touched };
    }),
}));
