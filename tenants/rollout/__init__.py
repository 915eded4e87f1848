"""Rolling migrations out to every tenant schema: resumable, parallel, one failure isolated.

``state`` keeps the roll-out's durable record in the public schema, ``migrator`` migrates one
schema at a time with a migration graph built once per process, and ``engine`` runs the
migrators in parallel worker processes and reports progress and a summary.
"""
