"""From traces to kinetics: samples, merged tables, model fits and reports."""
