/* The FLOP count behind a pretraining run's MFU figure. */
#include "train/train.h"

#include "core/core.h"
#include "model/model.h"

#include <math.h>
#include <stdio.h>

double train_flops_per_token(const bert_config *c, int S) {
    double L = c->L, H = c->H, I = c->I, V = c->V;
    double ffn = c->glu ? 1.5 * H * I : 2.0 * H * I;
    double share = c->sparse_pred > 0 ? c->sparse_pred : 1.0; /* decoded share of the rows */
    double head = c->head_transform ? H * H : 0.0;
    double n_eff = L * (4.0 * H * H + ffn) + share * (V * H + head);
    return 6.0 * n_eff + 12.0 * L * S * H;
}
