// The built-in experiment. Keep identical to configs/quick.yaml (ExperimentTests checks byte for byte).

public extension ExperimentConfig {
    /// The text of `configs/quick.yaml`, embedded so `builtinDefault()` needs no file.
    static let builtinDefaultYAML = #"""
# quick.yaml: NTKScape's built-in default experiment (what `ntkscape run` does without a file).
# Source: NTKScape's small-scale version of Fort et al. 2020 ("Deep learning versus kernel learning",
# NeurIPS 2020) with their SimpleCNN (appendix D.1) and its optimiser, Adam at learning rate 1e-3,
# shrunk to finish within 10 minutes on 2 cores with 2 ranks (Fashion-MNIST instead of CIFAR).
# Budget (measured on a 2-core machine, 1 thread per rank: ~250 training and ~650 evaluation
# images/s per rank): parent 3 epochs x 5000 = 15k images; children 2 x (3 + 2.75 + 2.5 + 2 + 1)
# epochs x 5000 = 112.5k images; 11-point barriers on 2000 test + 1000 train images for 5 pairs;
# errors at 6 parent times. About 7 minutes with `mpirun -np 2`. The learning rate drops 10x at
# epoch 2.5 so the children's final weights are not dominated by Adam's last noisy steps.
# This file is embedded in the program (ExperimentConfig.builtinDefaultYAML); a test keeps the two
# byte-for-byte identical, so edit both together.
name: quick
seed: 0
dataset:
  kind: fashion-mnist
  path: /usr/share/datasets/fashion-mnist
  train_subset: 5000
  test_subset: 2000
  augment: off
model: simplecnn
recipe:
  optimizer: adam
  learning_rate: 0.001
  weight_decay: 0
  schedule: {milestones: [2.5], gamma: 0.1}
  batch_size: 128
  epochs: 3
  loss: cross_entropy
replicates: 1
spawn_times: [0, 0.25, 0.5, 1, 2]
children: 2
probe_size: 100
barrier:
  points: 11
  train_subset: 1000

"""#
}
