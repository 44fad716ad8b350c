"""LoRA fine-tuning jobs for NExT: validated specs, a child process per job, atomic adapters."""
