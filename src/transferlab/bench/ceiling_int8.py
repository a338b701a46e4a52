"""The int8 ceiling: the fastest ONNX Runtime computes 8-bit integer products on this machine, in GOP/s.

Its kernels are the ones the int8 runtime's quantized graph runs: each distinct convolution of the benchmarked
network alone as a ``QLinearConv`` (uint8 activations × int8 per-channel weights, uint8 out — the kernel ORT fuses
a QDQ convolution and its ReLU into) at the bench batch size, and an n×n ``MatMulInteger`` (u8 × s8). The
network's int8 graph also runs its pooling, quantize/dequantize and fp32 steps, so it cannot beat its fastest
kernel. Where the CPU has VNNI (``avx512_vnni``/``avx_vnni``), these kernels use its dot-product instructions;
with AVX2 alone (this Zen 3) ORT's u8×s8 kernels multiply pairs into 16-bit sums (``vpmaddubsw``).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from transferlab.features.extractor import FeatureNet
from transferlab.features.runtimes import check_runtime
from transferlab.bench.ceiling import layer_calls, layer_names


def _session(graph, inputs, outputs, initializers):
    import onnx
    import onnxruntime as ort
    from onnx import helper

    model = helper.make_model(helper.make_graph(graph, "kernel", inputs, outputs, initializers),
                              opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()  # as the int8 runtime's sessions
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    onnx.checker.check_model(model)
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def qlinear_conv(m: nn.Conv2d, in_shape: tuple[int, ...]):
    """A session running ``m``'s convolution alone as QLinearConv on uint8 input of ``in_shape``, and its input."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    k, c = m.out_channels, m.in_channels // m.groups
    w = rng.integers(-63, 64, (k, c, *m.kernel_size), dtype=np.int8)  # 7-bit weights, as the recipe's
    inits = [numpy_helper.from_array(a, n) for a, n in [
        (np.array(0.02, np.float32), "xs"), (np.array(128, np.uint8), "xz"), (w, "w"),
        ((rng.random(k) + 0.5).astype(np.float32) * 1e-3, "ws"), (np.zeros(k, np.int8), "wz"),
        (np.array(0.05, np.float32), "ys"), (np.array(0, np.uint8), "yz"), (np.zeros(k, np.int32), "b")]]
    if type(m).forward is not nn.Conv2d.forward:  # a convolution that pads itself (TensorFlow's SAME)
        pads = {"auto_pad": "SAME_UPPER"}
    else:
        ph, pw = m.padding
        pads = {"pads": [ph, pw, ph, pw]}
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"],
                            kernel_shape=list(m.kernel_size), strides=list(m.stride), dilations=list(m.dilation),
                            group=m.groups, **pads)
    out = helper.make_tensor_value_info("y", TensorProto.UINT8, [in_shape[0], m.out_channels, None, None])
    sess = _session([node], [helper.make_tensor_value_info("x", TensorProto.UINT8, list(in_shape))], [out], inits)
    return sess, {"x": rng.integers(0, 256, in_shape, dtype=np.uint8)}


def matmul_integer(n: int):
    """A session of an n×n u8 × s8 → int32 MatMulInteger, and its input."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
    sess = _session([node], [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])],
                    [helper.make_tensor_value_info("y", TensorProto.INT32, [n, n])],
                    [numpy_helper.from_array(rng.integers(-64, 64, (n, n), dtype=np.int8), "b")])
    return sess, {"a": rng.integers(0, 256, (n, n), dtype=np.uint8)}


def int8_kernels(model, output: tuple[str, str], batch_size: int, n: int):
    """(name, call, GOP) of the int8 ceiling's kernels: the n×n MatMulInteger, then each distinct convolution
    of ``model``'s network up to ``output`` alone (names as the fp32 ceiling's, way ``ort-int8``)."""
    check_runtime("int8")  # the packages its graphs are built and run with, named if missing
    sess, feed = matmul_integer(n)
    yield f"ort-int8: MatMulInteger {n}²", lambda: sess.run(None, feed), 2 * n**3 / 1e9
    shape = (3, model.preprocess.crop, model.preprocess.crop)
    names = layer_names(model.net)
    layers = {}
    for m, in_shape, gop in layer_calls(FeatureNet(model.net, [output]).eval(), shape):
        if isinstance(m, nn.Conv2d):
            key = (repr(m), in_shape)
            layers.setdefault(key, [names.get(id(m), type(m).__name__), m, in_shape, 0, gop])[3] += 1
    for name, m, in_shape, count, gop in layers.values():
        label = f"{name}{f' (×{count})' if count > 1 else ''} {'×'.join(map(str, in_shape[1:]))}"
        sess, feed = qlinear_conv(m, (batch_size, *in_shape[1:]))
        yield f"ort-int8: {label}", lambda sess=sess, feed=feed: sess.run(None, feed), gop * batch_size
