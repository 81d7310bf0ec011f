// Caffe2 -> PyTorch name rules, applied in order, as SlowFast's `c2_model_loading.get_name_convert_func`
// (the same table as scripts/export-weights.py).
const C2_RULES: Array<[RegExp, string]> = [
  [/^nonlocal_conv([0-9]+)_([0-9]+)_(.*)/, 's$1.pathway0_nonlocal$2_$3'],
  [/^(.*)_nonlocal([0-9]+)_(theta)(.*)/, '$1_nonlocal$2.conv_$3$4'],
  [/^(.*)_nonlocal([0-9]+)_(g)(.*)/, '$1_nonlocal$2.conv_$3$4'],
  [/^(.*)_nonlocal([0-9]+)_(phi)(.*)/, '$1_nonlocal$2.conv_$3$4'],
  [/^(.*)_nonlocal([0-9]+)_(out)(.*)/, '$1_nonlocal$2.conv_$3$4'],
  [/^(.*)_nonlocal([0-9]+)_(bn)_(.*)/, '$1_nonlocal$2.$3.$4'],
  [/^t_pool1_subsample_bn_(.*)/, 's1_fuse.bn.$1'],
  [/^t_pool1_subsample_(.*)/, 's1_fuse.conv_f2s.$1'],
  [/^t_res([0-9]+)_([0-9]+)_branch2c_bn_subsample_bn_(.*)/, 's$1_fuse.bn.$3'],
  [/^t_res([0-9]+)_([0-9]+)_branch2c_bn_subsample_(.*)/, 's$1_fuse.conv_f2s.$3'],
  [/^res([0-9]+)_([0-9]+)_branch([0-9]+)([a-z])_(.*)/, 's$1.pathway0_res$2.branch$3.$4_$5'],
  [/^res_conv1_bn_(.*)/, 's1.pathway0_stem.bn.$1'],
  [/^conv1_(.*)/, 's1.pathway0_stem.conv.$1'],
  [/^res([0-9]+)_([0-9]+)_branch([0-9]+)_(.*)/, 's$1.pathway0_res$2.branch$3_$4'],
  [/^res_conv1_(.*)/, 's1.pathway0_stem.conv.$1'],
  [/^t_res([0-9]+)_([0-9]+)_branch([0-9]+)([a-z])_(.*)/, 's$1.pathway1_res$2.branch$3.$4_$5'],
  [/^t_res_conv1_bn_(.*)/, 's1.pathway1_stem.bn.$1'],
  [/^t_conv1_(.*)/, 's1.pathway1_stem.conv.$1'],
  [/^t_res([0-9]+)_([0-9]+)_branch([0-9]+)_(.*)/, 's$1.pathway1_res$2.branch$3_$4'],
  [/^t_res_conv1_(.*)/, 's1.pathway1_stem.conv.$1'],
  [/pred_(.*)/, 'head.projection.$1'],
  [/(.*)bn.b$/, '$1bn.bias'],
  [/(.*)bn.s$/, '$1bn.weight'],
  [/(.*)bn.rm$/, '$1bn.running_mean'],
  [/(.*)bn.riv$/, '$1bn.running_var'],
  [/(.*)[._]b$/, '$1.bias'],
  [/(.*)[._]w$/, '$1.weight'],
];

/**
 * A Caffe2 blob name as SlowFast's converter maps it.
 *
 * @example caffe2ToPytorchName('res2_0_branch2a_bn_riv') // 's2.pathway0_res0.branch2.a_bn.running_var'
 */
export function caffe2ToPytorchName(name: string): string {
  for (const [re, to] of C2_RULES) name = name.replace(re, to);
  return name;
}

/** The parameter and buffer names a state dict keeps from a Caffe2 checkpoint. */
export const PARAM_SUFFIXES = ['.weight', '.bias', '.running_mean', '.running_var'];
