"""``transferlab report``: one self-contained HTML page answering the practical's questions from run, study and
fine-tune records (:mod:`.inputs`) and the parts :mod:`transferlab.analysis` computes, through per-part sections
(:mod:`.sections`) and Jinja2 templates (:mod:`.render`)."""
