"""Wildcards and dynamic prompts, as A1111's sd-dynamic-prompts extension makes them, with its library
(`dynamicprompts`) for the grammar: the wildcards folder (folder.py), resolving a template (resolve.py), a
call's batches resolved per image (expand.py) and their settings (fields.py). Light: the library is
imported by resolve.py only, when a plan has a template to resolve."""
