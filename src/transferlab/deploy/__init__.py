"""The stage after training: a model put to work. A model folder (``transferlab run --save``: ``save``, ``folder``,
``params``, ``backbone``, ``training``, ``card``) read back by ``load_classifier`` (``saved``; a fine-tuning folder
too: ``finetuned``); the fitted pipeline as one torch module and one ONNX graph (``pipeline``, ``onnx``, ``export``).
"""
