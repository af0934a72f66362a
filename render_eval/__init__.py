"""render_eval: the paper's evaluation: light a four-ball Cycles scene with predicted and ground-truth HDR
panoramas, render both with identical settings, and score the renders (method.md §4, Table 4).

``render_eval.metrics``, ``render_eval.baselines`` and ``render_eval.display`` need no ``bpy``; rendering does.
"""
