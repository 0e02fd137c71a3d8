"""The detailer (A1111's ADetailer extension): an open-vocabulary detector finds faces, hands or people in
a finished picture, and each region found is repainted by "only masked" inpainting at its own resolution.

`targets.py`: what it looks for and the detectors it knows by name (light: the field table reads it);
`detector.py`: loading OWLv2 / OWL-ViT from `transformers` and finding boxes; `tiny.py`: the offline
random-weight OWLv2; `masks.py`: boxes to masks (pure PIL); `fields.py`: the settings, declared once;
`a1111.py`: ADetailer's `alwayson_scripts` arguments. The pass itself is studio/tasks/detail.py.
"""
