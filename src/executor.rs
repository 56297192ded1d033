//! Placeholder: the executor (run_in_executor, DNS, run_coroutine_threadsafe) is being written.
